package recovery

import (
	"testing"

	"github.com/stretchr/testify/assert"

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
