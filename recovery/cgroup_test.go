package recovery

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/cgroup"
	"github.com/solo-rt/solo/pkg/state"
)

// containerTarget is a fakeTarget whose services have cgroups.
type containerTarget struct {
	*fakeTarget
	groups  map[state.Key]*cgroup.Group
	members map[state.Key][]int
}

var _ Container = containerTarget{}

func (c containerTarget) Cgroup(key state.Key) *cgroup.Group { return c.groups[key] }

func (c containerTarget) Members() (map[state.Key][]int, error) { return c.members, nil }

// TestStrayCgroup: a stray's whole cgroup is emptied only when its service
// must not run at all; the cgroup of a service that runs holds its live
// instance, which must stay.
func TestStrayCgroup(t *testing.T) {
	w := fold(t,
		deployed("web", 1), started("web", 1, 1, 100),
		deployed("gone", 1), started("gone", 1, 1, 200), step{"gone", state.Killed{Reason: "requested"}},
	)
	web, gone, ghost := state.Key{Tenant: "default", Name: "web"}, state.Key{Tenant: "default", Name: "gone"}, state.Key{Tenant: "default", Name: "ghost"}
	groups := map[state.Key]*cgroup.Group{web: new(cgroup.Group), gone: new(cgroup.Group), ghost: new(cgroup.Group)}
	ct := containerTarget{fakeTarget: newFakeTarget(t, w), groups: groups}
	svc := func(k state.Key) *state.Service {
		s, ok := w.Service(k.Tenant, k.Name)
		if !ok {
			return nil
		}
		return s
	}
	assert.Nil(t, strayCgroup(ct, svc(web), web), "a service that should run keeps its cgroup's processes")
	assert.Same(t, groups[gone], strayCgroup(ct, svc(gone), gone), "a killed service's stray takes its cgroup with it")
	assert.Same(t, groups[ghost], strayCgroup(ct, svc(ghost), ghost), "a service the log does not know leaves nothing")
	assert.Nil(t, strayCgroup(ct.fakeTarget, svc(gone), gone), "a target without cgroups has none to empty")
}

// verifyContainer is a containerTarget the Verifier can check: every
// service is supervised, and it counts its readings of the cgroups.
type verifyContainer struct {
	containerTarget
	readings *atomic.Int32
}

func (v verifyContainer) Members() (map[state.Key][]int, error) {
	v.readings.Add(1)
	return v.containerTarget.Members()
}

func (v verifyContainer) Supervised(state.Key) bool { return true }

func (v verifyContainer) LockKeys([]state.Key) func() { return func() {} }

// TestReplayer_Verify_ReusesCgroupReading: the check after a cold start's
// pass takes the cgroups as the pass read them (a fifth of a cold start at
// 10,000 services), where a plain Verify reads them again; after a pass
// that failed, it reads them itself.
func TestReplayer_Verify_ReusesCgroupReading(t *testing.T) {
	w := fold(t, deployed("web", 1))
	vc := verifyContainer{containerTarget{fakeTarget: newFakeTarget(t, w), members: map[state.Key][]int{}}, new(atomic.Int32)}
	rp := NewReplayer(vc, Options{})
	runUnderTree(t, rp)
	require.EqualValues(t, 1, vc.readings.Load(), "the pass reads the cgroups once")

	rep, err := rp.Verify(context.Background(), vc, true)
	require.NoError(t, err)
	assert.True(t, rep.Clean)
	assert.EqualValues(t, 1, vc.readings.Load(), "the check after the pass reads them no second time")

	rep, err = Verify(context.Background(), vc, true)
	require.NoError(t, err)
	assert.True(t, rep.Clean)
	assert.EqualValues(t, 2, vc.readings.Load(), "a plain Verify reads them afresh")

	failed := NewReplayer(verifyContainer{containerTarget{fakeTarget: &fakeTarget{WorldFunc: func() *state.World { panic("no world") }}}, vc.readings}, Options{})
	_, err = failed.Run(context.Background())
	require.ErrorIs(t, err, ErrPanic)
	_, err = failed.Verify(context.Background(), vc, true)
	require.NoError(t, err)
	assert.EqualValues(t, 3, vc.readings.Load(), "after a failed pass, the check reads them itself")
}
