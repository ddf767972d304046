package solo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/cgroup"
	"github.com/solo-rt/solo/eventstore/etcdstore"
	"github.com/solo-rt/solo/eventstore/etcdstore/etcdtest"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// fakeNode is a cluster node whose lease a test sets.
type fakeNode struct {
	mu    sync.Mutex
	lease int64
	ok    bool
}

func (n *fakeNode) Name() string { return "n1" }
func (n *fakeNode) Lease() (int64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lease, n.ok
}
func (n *fakeNode) set(lease int64, ok bool) {
	n.mu.Lock()
	n.lease, n.ok = lease, ok
	n.mu.Unlock()
}

// TestRuntime_RunsWhatIsPlacedHere: a node runs a service only while it is
// placed on it under its current lease and it is not fenced; the child
// gets its placement's fence; its facts carry it; a placement elsewhere,
// a new lease or a fence stops it.
func TestRuntime_RunsWhatIsPlacedHere(t *testing.T) {
	ctx := context.Background()
	c := etcdtest.Start(t, 1, etcdtest.Options{NoFsync: true})
	log, err := etcdstore.Open(c.Client(t), &etcdstore.Options{RequestTimeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { log.Close() })
	node := &fakeNode{lease: 7, ok: true}
	dir := t.TempDir()
	rt, err := solo.Open(ctx, solo.Options{DataDir: dir, Log: log, Node: node, Backoff: fastBackoff, Cgroups: cgroup.Disabled("test")})
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close(ctx) })
	ev := follow(t, rt, 0)
	key := state.Key{Tenant: "default", Name: "web"}
	envFile := filepath.Join(dir, "env")
	spec := solo.Spec{Name: "web", Command: []string{"sh", "-c", "env > " + envFile + ".$$; exec sleep 1000"}}

	res, err := rt.Deploy(ctx, spec)
	require.NoError(t, err)
	v, err := rt.Status("default", "web")
	require.NoError(t, err)
	assert.Zero(t, v.PID, "not placed: nothing runs")

	place := func(node string, lease int64) uint64 {
		ev, err := state.NewEvent("default", "web", state.Placed{Node: node, Lease: lease})
		require.NoError(t, err)
		pos, err := log.Append(ctx, ev)
		require.NoError(t, err)
		return pos[0]
	}
	started := func(fence uint64) int {
		t.Helper()
		_, p := ev.next(key, state.TypeServiceStarted)
		s := p.(state.Started)
		require.Equal(t, fence, s.Fence, "the start carries its placement's fence")
		return s.PID
	}
	exited := func(pid int, fence uint64) {
		t.Helper()
		for {
			_, p := ev.next(key, state.TypeServiceExited)
			if e := p.(state.Exited); e.PID == pid {
				require.Equal(t, fence, e.Fence)
				require.False(t, alive(pid))
				return
			}
		}
	}

	f1 := place("n1", 7)
	require.Greater(t, f1, res.Pos)
	pid := started(f1)
	var env []byte
	require.Eventually(t, func() bool {
		env, err = os.ReadFile(fmt.Sprintf("%s.%d", envFile, pid))
		return err == nil && len(env) > 0
	}, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, strings.Split(string(env), "\n"), fmt.Sprintf("SOLO_FENCE=%d", f1))
	assert.Contains(t, strings.Split(string(env), "\n"), "SOLO_NODE=n1")
	v, err = rt.Status("default", "web")
	require.NoError(t, err)
	assert.Equal(t, "n1", v.Node)
	assert.Equal(t, f1, v.Fence)

	place("n2", 9) // moved away
	exited(pid, f1)

	f3 := place("n1", 6) // an older lease of this node: stale
	f4 := place("n1", 7)
	require.Greater(t, f4, f3)
	pid = started(f4)

	node.set(7, false) // fenced
	rt.Reconcile()
	exited(pid, f4)

	node.set(8, true) // a new lease: the old placement is stale
	rt.Reconcile()
	f5 := place("n1", 8)
	pid = started(f5)
	require.True(t, alive(pid))
}
