package solo_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/cgroup"
	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/eventstore/etcdstore"
	"github.com/solo-rt/solo/eventstore/etcdstore/etcdtest"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// TestRuntime_EtcdLog runs the runtime on an etcd log (Options.Log): the
// events go to etcd, not to solo.db; a second start folds them from etcd
// and brings the service back; with etcd gone a write fails as
// unavailable and opens a store fault, which the first write after etcd
// returns closes.
func TestRuntime_EtcdLog(t *testing.T) {
	ctx := context.Background()
	c := etcdtest.Start(t, 1, etcdtest.Options{NoFsync: true})
	log, err := etcdstore.Open(c.Client(t), &etcdstore.Options{RequestTimeout: time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { log.Close() })
	dir := t.TempDir()
	open := func() *solo.Runtime {
		rt, err := solo.Open(ctx, solo.Options{DataDir: dir, Log: log, Backoff: fastBackoff, Cgroups: cgroup.Disabled("test")})
		require.NoError(t, err)
		return rt
	}

	rt := open()
	res, err := rt.Deploy(ctx, sleeper("web"))
	require.NoError(t, err)
	v, err := rt.WaitStarted(ctx, "default", "web", res.Pos)
	require.NoError(t, err)
	require.True(t, alive(v.PID))
	assert.NoFileExists(t, filepath.Join(dir, "solo.db"), "the log is etcd's")
	assert.FileExists(t, filepath.Join(dir, "node.db"), "node-local data")
	var types []string
	for env, err := range log.Read(1, 0) {
		require.NoError(t, err)
		types = append(types, env.Type)
	}
	assert.Contains(t, types, string(state.TypeServiceDeployed))
	_, err = rt.Shutdown(ctx, "test", time.Second)
	require.NoError(t, err)
	assert.False(t, alive(v.PID))

	rt = open()
	t.Cleanup(func() { rt.Close(ctx) })
	again, err := rt.WaitStarted(ctx, "default", "web", 0)
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, again.State, "brought back from the etcd log")
	assert.NotEqual(t, v.PID, again.PID)

	c.Stop(0)
	_, err = rt.Deploy(ctx, sleeper("api"))
	require.ErrorIs(t, err, eventstore.ErrUnavailable)
	_, open2 := rt.StoreFault()
	assert.True(t, open2, "a cluster that does not answer is a store fault")
	require.True(t, alive(again.PID), "services keep running while etcd is away")

	require.NoError(t, c.Restart(0))
	require.Eventually(t, func() bool { // etcd's client reconnects by itself
		_, err := rt.Deploy(ctx, sleeper("api"))
		return err == nil
	}, 30*time.Second, 50*time.Millisecond)
	_, open2 = rt.StoreFault()
	assert.False(t, open2, "the fault closes at the first write that succeeds")
}
