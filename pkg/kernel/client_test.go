package kernel_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/kernel"
	"github.com/solo-rt/solo/pkg/kernel/kerneltest"
)

func TestConnectionFile(t *testing.T) {
	info, err := kernel.NewConnectionInfo("", "python3")
	require.NoError(t, err)
	assert.False(t, info.Bound(), "a new connection leaves its ports to the kernel: %+v", info)
	assert.Len(t, info.Key, 64, "a 256-bit key, hex")
	path := t.TempDir() + "/k.json"
	require.NoError(t, kernel.WriteConnectionFile(path, info))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the key must be readable by its owner only")
	_, err = kernel.ReadConnectionFile(path)
	assert.ErrorIs(t, err, kernel.ErrBadConnectionFile, "a file whose ports are 0 cannot be dialled")

	info.ShellPort, info.IOPubPort, info.StdinPort, info.ControlPort, info.HBPort = 5001, 5002, 5003, 5004, 5005
	require.NoError(t, kernel.WriteConnectionFile(path, info))
	got, err := kernel.ReadConnectionFile(path)
	require.NoError(t, err)
	assert.Equal(t, info, got)

	require.NoError(t, os.WriteFile(path, []byte(`{"transport":"tcp","ip":"127.0.0.1","key":""}`), 0o600))
	_, err = kernel.ReadConnectionFile(path)
	assert.True(t, errors.Is(err, kernel.ErrBadConnectionFile), "%v", err)
}

// The kernel rewrites its connection file in place (removed, created,
// written): WaitConnectionFile takes neither a missing file, nor a half
// written one, nor ports still 0 for an answer.
func TestWaitConnectionFile(t *testing.T) {
	info, err := kernel.NewConnectionInfo("", "python3")
	require.NoError(t, err)
	bound := info
	bound.ShellPort, bound.IOPubPort, bound.StdinPort, bound.ControlPort, bound.HBPort = 5001, 5002, 5003, 5004, 5005
	full, err := json.Marshal(bound)
	require.NoError(t, err)

	dir := t.TempDir()
	path := filepath.Join(dir, "k.json")
	require.NoError(t, kernel.WriteConnectionFile(path, info))
	type result struct {
		info kernel.ConnectionInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		got, err := kernel.WaitConnectionFile(context.Background(), path)
		done <- result{got, err}
	}()
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.WriteFile(path, full[:len(full)/2], 0o600))
	require.NoError(t, os.WriteFile(path, full, 0o600))
	select {
	case r := <-done:
		require.NoError(t, r.err)
		assert.Equal(t, bound, r.info)
	case <-time.After(30 * time.Second):
		t.Fatal("WaitConnectionFile missed the kernel's rewrite")
	}

	got, err := kernel.WaitConnectionFile(context.Background(), path)
	require.NoError(t, err, "a file already written is read at once")
	assert.Equal(t, bound, got)

	t.Run("a complete file that is not usable is an error at once", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.json")
		require.NoError(t, os.WriteFile(bad, []byte(`{"transport":"tcp","ip":"127.0.0.1","key":""}`), 0o600))
		_, err := kernel.WaitConnectionFile(context.Background(), bad)
		assert.ErrorIs(t, err, kernel.ErrBadConnectionFile)
	})
	t.Run("ends with its context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := kernel.WaitConnectionFile(ctx, filepath.Join(dir, "never.json"))
			done <- err
		}()
		cancel()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(30 * time.Second):
			t.Fatal("WaitConnectionFile did not end with its context")
		}
	})
}

func TestClient_Execute(t *testing.T) {
	k := kerneltest.Start(t)
	c := k.Dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("result and stream", func(t *testing.T) {
		var mu sync.Mutex
		var outs []kernel.Output
		r, err := c.Execute(ctx, kernel.ExecuteRequest{Code: "print('hi'); x = 41\nx + 1", StoreHistory: true}, func(o kernel.Output) {
			mu.Lock()
			outs = append(outs, o)
			mu.Unlock()
		})
		require.NoError(t, err)
		assert.Equal(t, "ok", r.Status)
		require.Len(t, outs, 2, "%+v", outs)
		assert.Equal(t, kernel.Output{Kind: kernel.OutputStream, Name: "stdout", Text: "hi\n"}, outs[0])
		assert.Equal(t, kernel.OutputResult, outs[1].Kind)
		assert.Equal(t, "42", outs[1].Text)
	})
	t.Run("error", func(t *testing.T) {
		r, err := c.Execute(ctx, kernel.ExecuteRequest{Code: "1/0"}, nil)
		require.NoError(t, err)
		assert.Equal(t, "error", r.Status)
		assert.Equal(t, "ZeroDivisionError", r.EName)
		assert.NotEmpty(t, r.Traceback)
	})
	t.Run("interrupt", func(t *testing.T) {
		done := make(chan kernel.Reply, 1)
		started := make(chan struct{})
		var once sync.Once
		go func() {
			// Short sleeps, not one long one: ipykernel signals its own
			// process from its control thread, and under load that thread
			// may take the SIGINT itself; Python then raises
			// KeyboardInterrupt in the main thread only when it next runs
			// a bytecode, which a time.sleep(60) would put off for 60 s.
			code := "import time\nprint('go', flush=True)\nwhile True:\n    time.sleep(0.05)"
			r, _ := c.Execute(ctx, kernel.ExecuteRequest{Code: code}, func(o kernel.Output) {
				if o.Kind == kernel.OutputStream {
					once.Do(func() { close(started) })
				}
			})
			done <- r
		}()
		<-started
		require.NoError(t, c.Interrupt(ctx))
		select {
		case r := <-done:
			assert.Equal(t, "error", r.Status)
			assert.Equal(t, "KeyboardInterrupt", r.EName)
		case <-time.After(20 * time.Second):
			t.Fatal("interrupt did not stop the execution")
		}
	})
	t.Run("heartbeat", func(t *testing.T) {
		require.NoError(t, c.Ping(ctx, 5*time.Second))
	})
	t.Run("variables survive a new client", func(t *testing.T) {
		c2 := k.Dial(t)
		var text strings.Builder
		r, err := c2.Execute(ctx, kernel.ExecuteRequest{Code: "x + 1"}, func(o kernel.Output) { text.WriteString(o.Text) })
		require.NoError(t, err)
		assert.Equal(t, "ok", r.Status)
		assert.Equal(t, "42", text.String())
	})
}

func TestClient_DeadKernel(t *testing.T) {
	k := kerneltest.Start(t)
	c := k.Dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, k.Cmd.Process.Kill())
	k.Cmd.Wait()
	err := c.Ping(ctx, 2*time.Second)
	require.Error(t, err)
	assert.True(t, errors.Is(err, kernel.ErrNoHeartbeat) || errors.Is(err, kernel.ErrDisconnected), "%v", err)
	_, err = c.Execute(ctx, kernel.ExecuteRequest{Code: "1"}, nil)
	require.Error(t, err, "an execution on a dead kernel must fail, not hang")
}
