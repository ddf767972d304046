package session_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/session/sessiontest"
	"github.com/solo-rt/solo/pkg/state"
)

// TestManager_ClusterNodes: two managers of one log stand for two nodes.
// A session belongs to the node that created it (its kernel's spec names
// that node only); the other answers for it from the log, takes its tasks,
// and refuses what only the owner's disk has. Once its node is recorded
// lost, submits are refused saying so, and a restart on the other node
// moves it there, empty; a session that runs is not restarted.
func TestManager_ClusterNodes(t *testing.T) {
	ctx := ctxT(t)
	h := sessiontest.NewHost(t)
	var mu sync.Mutex
	var deployed []state.Spec
	h.DeployFunc = func(_ context.Context, spec state.Spec) error {
		mu.Lock()
		defer mu.Unlock()
		deployed = append(deployed, spec)
		return nil
	}
	lastDeploy := func() state.Spec {
		mu.Lock()
		defer mu.Unlock()
		require.NotEmpty(t, deployed)
		return deployed[len(deployed)-1]
	}
	n1 := sessiontest.MustOpen(t, h, session.Options{Node: "n1"})
	n2 := sessiontest.MustOpen(t, h, session.Options{Node: "n2"})

	v, err := n1.Create(ctx, "", "nb", "", "/usr/bin/python3")
	require.NoError(t, err)
	assert.Equal(t, "n1", v.Node)
	assert.Equal(t, []string{"n1"}, lastDeploy().Nodes, "its kernel runs on its node only")

	v, err = n2.Get(state.DefaultTenant, "nb")
	require.NoError(t, err)
	assert.Equal(t, "n1", v.Node, "another node answers for it, naming its node")
	tk, err := n2.Submit(ctx, state.DefaultTenant, "nb", "x = 1", session.SubmitOptions{})
	require.NoError(t, err, "another node takes its tasks: they are log writes")
	_, err = n2.OpenOutput(ctx, tk.ID)
	require.ErrorIs(t, err, session.ErrElsewhere)
	assert.Contains(t, err.Error(), "runs on node n1")
	_, err = n2.Assets(ctx, state.DefaultTenant, "nb")
	require.ErrorIs(t, err, session.ErrElsewhere)
	_, err = n1.Assets(ctx, state.DefaultTenant, "nb")
	require.NoError(t, err, "its own node has its files")
	_, err = n2.Restart(ctx, state.DefaultTenant, "nb", "")
	require.ErrorIs(t, err, session.ErrNotLost)
	assert.Contains(t, err.Error(), "it runs on node n1")

	pos, err := h.Append(ctx, state.Key{Tenant: state.DefaultTenant, Name: "nb"}, state.SessionLost{Node: "n1", Lease: 7, Reason: "node n1 lost its lease 7"})
	require.NoError(t, err)
	require.NoError(t, n2.WaitFolded(ctx, pos))
	v, err = n2.Get(state.DefaultTenant, "nb")
	require.NoError(t, err)
	assert.Equal(t, "lost", v.State)
	assert.Contains(t, v.Lost, "lost: node n1 died at ")
	got, err := n2.Task(tk.ID)
	require.NoError(t, err)
	assert.Equal(t, state.FailNodeLost, got.Reason, "its queued task failed with its node")
	_, err = n1.Submit(ctx, state.DefaultTenant, "nb", "x", session.SubmitOptions{})
	require.ErrorIs(t, err, session.ErrLost)
	assert.Contains(t, err.Error(), "solo session restart nb")
	_, err = n2.Restart(ctx, state.DefaultTenant, "nb", "python3")
	require.ErrorIs(t, err, session.ErrInvalid, "a relative python is refused")

	v, err = n2.Restart(ctx, state.DefaultTenant, "nb", "/usr/bin/python3")
	require.NoError(t, err)
	assert.Equal(t, "n2", v.Node)
	assert.Empty(t, v.Lost)
	assert.Zero(t, v.Pending, "empty: nothing of the old queue")
	assert.Equal(t, []string{"n2"}, lastDeploy().Nodes, "its kernel runs on its new node only")
	_, err = n2.Submit(ctx, state.DefaultTenant, "nb", "x = 2", session.SubmitOptions{})
	require.NoError(t, err)
	_, err = n1.Assets(ctx, state.DefaultTenant, "nb")
	require.ErrorIs(t, err, session.ErrElsewhere, "its files are now the new node's")
}
