package session_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/session/sessiontest"
	"github.com/solo-rt/solo/pkg/state"
)

// TestManager_HostFold: the manager reads its host's fold and is woken by
// it, with no fold of its own: what another writer appends is seen, and
// wakes a Wait, once the host has folded it; Close ends the waits.
func TestManager_HostFold(t *testing.T) {
	h := sessiontest.NewHost(t)
	m := sessiontest.MustOpen(t, h, session.Options{})
	ctx := ctxT(t)
	_, err := m.Create(ctx, "", "nb", "", "/usr/bin/python3")
	require.NoError(t, err)
	tk, err := m.Submit(ctx, "", "nb", "1", session.SubmitOptions{})
	require.NoError(t, err)
	got, err := m.Task(tk.ID)
	require.NoError(t, err, "a submitted task is read at once")
	assert.Equal(t, state.TaskStatePending, got.State)

	// No kernel runs here: the task stays pending until someone else
	// cancels it through the log.
	waited := make(chan *state.Task, 1)
	go func() {
		w, err := m.Wait(ctx, tk.ID)
		assert.NoError(t, err)
		waited <- w
	}()
	key := state.Key{Tenant: state.DefaultTenant, Name: "nb"}
	pos, err := h.Append(ctx, key, state.TaskCancelled{ID: tk.ID})
	require.NoError(t, err)
	require.NoError(t, h.WaitFolded(ctx, pos))
	got, err = m.Task(tk.ID)
	require.NoError(t, err)
	assert.Equal(t, state.TaskStateCancelled, got.State, "the host folded it: the manager reads it")
	select {
	case w := <-waited:
		assert.Equal(t, state.TaskStateCancelled, w.State)
	case <-ctx.Done():
		t.Fatal("Wait was not woken by the host's fold")
	}

	// A Wait and a WaitFolded that cannot end but by Close end with it.
	pending, err := m.Submit(ctx, "", "nb", "2", session.SubmitOptions{})
	require.NoError(t, err)
	errs := make(chan error, 2)
	go func() { _, err := m.Wait(ctx, pending.ID); errs <- err }()
	go func() { errs <- m.WaitFolded(ctx, h.Store.Head()+1000) }()
	require.NoError(t, m.Close())
	for range 2 {
		select {
		case err := <-errs:
			assert.ErrorIs(t, err, session.ErrClosed)
		case <-ctx.Done():
			t.Fatal("a wait outlived Close")
		}
	}
	assert.ErrorIs(t, m.WaitFolded(context.Background(), h.Store.Head()+1000), session.ErrClosed)
}
