package client_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/api"
	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/kernel/kerneltest"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// kernelTimeout bounds a session test: a kernel takes a few seconds to
// start, more under -race on a loaded machine.
const kernelTimeout = 2 * time.Minute

// mustServeKernels serves a runtime whose sessions run the test's python
// (failing the test, never skipping, when it has no ipykernel).
func mustServeKernels(t *testing.T) *apitest.Fixture {
	t.Helper()
	return apitest.MustServe(t, apitest.Options{Runtime: solo.Options{Python: kerneltest.Python(t)}})
}

// gatedWriter collects what a follower is sent and lets the test wait
// until it holds some text.
type gatedWriter struct {
	mu      sync.Mutex
	buf     strings.Builder
	changed chan struct{} // closed and replaced on every write
}

func newGatedWriter() *gatedWriter { return &gatedWriter{changed: make(chan struct{})} }

func (w *gatedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	close(w.changed)
	w.changed = make(chan struct{})
	return len(b), nil
}

func (w *gatedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor returns once w holds want; it fails the test if ctx ends first.
func (w *gatedWriter) waitFor(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	for {
		w.mu.Lock()
		got, ch := w.buf.String(), w.changed
		w.mu.Unlock()
		if strings.Contains(got, want) {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("follower never received %q; it holds %q: %v", want, got, ctx.Err())
		}
	}
}

// waitTaskStarted returns once task id's task_started is folded.
func waitTaskStarted(t *testing.T, f *apitest.Fixture, from uint64, tenant, session, id string) {
	t.Helper()
	for {
		env := f.WaitEvent(t, from, string(state.TypeTaskStarted), tenant, session)
		p, err := state.Decode(env)
		require.NoError(t, err)
		if p.(state.TaskStarted).ID == id {
			return
		}
		from = env.Pos + 1
	}
}

func TestClient_Sessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), kernelTimeout)
	defer cancel()
	f := mustServeKernels(t)
	c := f.Client(t, client.Options{})

	v, err := c.CreateSession(ctx, api.CreateSessionRequest{Name: "nb"})
	require.NoError(t, err)
	assert.Equal(t, "default", v.Tenant, "the tenant defaults")
	assert.Equal(t, "nb", v.Name)
	assert.Equal(t, "python3", v.Kernel, "the kernel defaults")
	assert.Equal(t, "session.nb", v.Service)

	_, err = c.CreateSession(ctx, api.CreateSessionRequest{Name: "nb"})
	var ae *client.APIError
	require.ErrorAs(t, err, &ae, "a second session of the same name")
	assert.Equal(t, api.CodeConflict, ae.Code)

	t.Run("list and get", func(t *testing.T) {
		for _, tenant := range []string{"", "default"} {
			vs, err := c.Sessions(ctx, tenant)
			require.NoError(t, err)
			require.Len(t, vs, 1, "tenant %q", tenant)
			assert.Equal(t, "default", vs[0].Tenant)
			assert.Equal(t, "nb", vs[0].Name)
		}
		vs, err := c.Sessions(ctx, "other")
		require.NoError(t, err)
		assert.Empty(t, vs)

		got, err := c.Session(ctx, "default", "nb")
		require.NoError(t, err)
		assert.Equal(t, "session.nb", got.Service)
	})

	t.Run("variables carry from task to task", func(t *testing.T) {
		set, err := c.Submit(ctx, "default", "nb", api.SubmitRequest{Code: "x = 41"}, true)
		require.NoError(t, err)
		assert.Equal(t, state.TaskStateCompleted, set.State, "%+v", set)

		tk, err := c.Submit(ctx, "default", "nb", api.SubmitRequest{Code: "print(x + 1)"}, false)
		require.NoError(t, err)
		assert.NotEmpty(t, tk.ID)
		assert.Equal(t, "nb", tk.Session)
		assert.Equal(t, "default", tk.Tenant)
		done, err := c.Task(ctx, tk.ID, true)
		require.NoError(t, err)
		require.Equal(t, state.TaskStateCompleted, done.State, "%+v", done)

		var out bytes.Buffer
		require.NoError(t, c.TaskOutput(ctx, tk.ID, false, &out))
		assert.Equal(t, "42\n", out.String())
		out.Reset()
		require.NoError(t, c.TaskOutput(ctx, tk.ID, true, &out), "following an ended task returns at once")
		assert.Equal(t, "42\n", out.String())
	})

	t.Run("follow streams the output while the task runs", func(t *testing.T) {
		// The task waits on gate files the test creates, so that what the
		// follower has received is checked at known points of the task.
		dir := t.TempDir()
		gate1, gate2 := filepath.Join(dir, "gate1"), filepath.Join(dir, "gate2")
		code := "import os, time\n" +
			"def gate(p):\n" +
			"    while not os.path.exists(p):\n" +
			"        time.sleep(0.01)\n" +
			"print('one', flush=True)\n" +
			"gate(" + pyString(gate1) + ")\n" +
			"time.sleep(0.1)\n" +
			"print('two', flush=True)\n" +
			"gate(" + pyString(gate2) + ")\n"
		tk, err := c.Submit(ctx, "default", "nb", api.SubmitRequest{Code: code}, false)
		require.NoError(t, err)

		w := newGatedWriter()
		followed := make(chan error, 1)
		go func() { followed <- c.TaskOutput(ctx, tk.ID, true, w) }()
		ended := func() bool {
			select {
			case err := <-followed:
				followed <- err
				return true
			default:
				return false
			}
		}

		w.waitFor(t, ctx, "one\n")
		now, err := c.Task(ctx, tk.ID, false)
		require.NoError(t, err)
		assert.Equal(t, state.TaskStateRunning, now.State)
		assert.Equal(t, "one\n", w.String())
		assert.False(t, ended(), "the follow ended while the task ran")

		require.NoError(t, os.WriteFile(gate1, nil, 0o600))
		w.waitFor(t, ctx, "one\ntwo\n")
		now, err = c.Task(ctx, tk.ID, false)
		require.NoError(t, err)
		assert.Equal(t, state.TaskStateRunning, now.State, "the second part arrived only once the task ended")
		assert.False(t, ended(), "the follow ended while the task ran")

		require.NoError(t, os.WriteFile(gate2, nil, 0o600))
		select {
		case err := <-followed:
			require.NoError(t, err)
		case <-ctx.Done():
			t.Fatalf("the follow did not end with the task: %v", ctx.Err())
		}
		assert.Equal(t, "one\ntwo\n", w.String())
		done, err := c.Task(ctx, tk.ID, false)
		require.NoError(t, err)
		assert.Equal(t, state.TaskStateCompleted, done.State, "the follow ended before the task did")
	})

	t.Run("cancel interrupts a running task", func(t *testing.T) {
		from := f.Runtime.Store().Head() + 1
		tk, err := c.Submit(ctx, "default", "nb", api.SubmitRequest{Code: "import time; time.sleep(60)"}, false)
		require.NoError(t, err)
		waitTaskStarted(t, f, from, "default", "nb", tk.ID)
		now, err := c.Task(ctx, tk.ID, false)
		require.NoError(t, err)
		require.Equal(t, state.TaskStateRunning, now.State)

		start := time.Now()
		_, err = c.CancelTask(ctx, tk.ID)
		require.NoError(t, err)
		done, err := c.Task(ctx, tk.ID, true)
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 30*time.Second, "the task was not interrupted")
		assert.Equal(t, state.TaskStateFailed, done.State, "%+v", done)
		assert.Equal(t, state.FailCancelled, done.Reason)
		assert.Equal(t, "KeyboardInterrupt", done.EName)

		again, err := c.CancelTask(ctx, tk.ID)
		require.NoError(t, err, "cancelling an ended task")
		assert.Equal(t, state.TaskStateFailed, again.State)

		// The session still works, and kept its variables.
		after, err := c.Submit(ctx, "default", "nb", api.SubmitRequest{Code: "print(x)"}, true)
		require.NoError(t, err)
		var out bytes.Buffer
		require.NoError(t, c.TaskOutput(ctx, after.ID, false, &out))
		assert.Equal(t, "41\n", out.String())
	})

	t.Run("remove", func(t *testing.T) {
		require.NoError(t, c.RemoveSession(ctx, "default", "nb"))
		_, err := c.Session(ctx, "default", "nb")
		require.True(t, client.IsNotFound(err), "session after remove: %v", err)
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, 404, ae.Status)

		vs, err := c.Sessions(ctx, "")
		require.NoError(t, err)
		assert.Empty(t, vs)
		_, err = c.Submit(ctx, "default", "nb", api.SubmitRequest{Code: "1"}, false)
		assert.True(t, client.IsNotFound(err), "submit after remove: %v", err)
		err = c.RemoveSession(ctx, "default", "nb")
		assert.True(t, client.IsNotFound(err), "second remove: %v", err)
	})
}

func TestClient_SessionsInvalidNameNeverSent(t *testing.T) {
	f := apitest.MustServe(t, apitest.Options{})
	c := f.Client(t, client.Options{})
	ctx := context.Background()
	head := f.Runtime.Store().Head()
	for _, name := range []string{"..", "../x", "UPPER", "a/b", ""} {
		_, err := c.Session(ctx, "default", name)
		assert.ErrorIs(t, err, state.ErrInvalidName, "%q", name)
		assert.True(t, client.IsInvalid(err))
		err = c.RemoveSession(ctx, "default", name)
		assert.ErrorIs(t, err, state.ErrInvalidName, "%q", name)
		_, err = c.Submit(ctx, "default", name, api.SubmitRequest{Code: "1"}, false)
		assert.ErrorIs(t, err, state.ErrInvalidName, "%q", name)
	}
	assert.Equal(t, head, f.Runtime.Store().Head())
}

// pyString quotes s as a Python string literal.
func pyString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func TestDiagCancelRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	f := mustServeKernels(t)
	c := f.Client(t, client.Options{})
	_, err := c.CreateSession(ctx, api.CreateSessionRequest{Name: "nb"})
	require.NoError(t, err)
	_, err = c.Submit(ctx, "default", "nb", api.SubmitRequest{Code: "1"}, true)
	require.NoError(t, err)
	for i := 0; i < 40; i++ {
		from := f.Runtime.Store().Head() + 1
		tk, err := c.Submit(ctx, "default", "nb", api.SubmitRequest{Code: "import time; time.sleep(4)"}, false)
		require.NoError(t, err)
		waitTaskStarted(t, f, from, "default", "nb", tk.ID)
		start := time.Now()
		_, err = c.CancelTask(ctx, tk.ID)
		require.NoError(t, err)
		done, err := c.Task(ctx, tk.ID, true)
		require.NoError(t, err)
		if time.Since(start) > 2*time.Second {
			t.Logf("%d: %v state=%s reason=%s ename=%s evalue=%q outs=%+v cancelreq=%v", i, time.Since(start), done.State, done.Reason, done.EName, done.EValue, done.Outputs, done.CancelRequested)
		}
	}
}
