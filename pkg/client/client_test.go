package client_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/state"
)

func sleeper(tenant, name string) state.Spec {
	return state.Spec{Tenant: tenant, Name: name, Command: []string{"sleep", "1000"}}
}

func TestClient_RoundTrip(t *testing.T) {
	ctx := context.Background()
	f := apitest.MustServe(t, apitest.Options{})
	c := f.Client(t, client.Options{})

	require.NoError(t, c.Health(ctx))
	require.NoError(t, c.Ready(ctx))

	t.Run("deploy and status", func(t *testing.T) {
		from := f.Runtime.Store().Head() + 1
		res, err := c.Deploy(ctx, sleeper("", "web"))
		require.NoError(t, err)
		assert.True(t, res.Changed)
		assert.NotZero(t, res.Pos)
		assert.Equal(t, "default", res.Service.Tenant)
		assert.Equal(t, uint64(1), res.Service.Generation)

		f.WaitEvent(t, from, string(state.TypeServiceStarted), "default", "web")
		view, err := c.Status(ctx, "default", "web")
		require.NoError(t, err)
		assert.Equal(t, state.StateRunning, view.State)
		assert.NotZero(t, view.PID)
		assert.Equal(t, []string{"sleep", "1000"}, view.Command)

		again, err := c.Deploy(ctx, sleeper("default", "web"))
		require.NoError(t, err)
		assert.False(t, again.Changed, "the same spec deployed twice changed something")
	})

	t.Run("list", func(t *testing.T) {
		all, err := c.List(ctx, "")
		require.NoError(t, err)
		require.Len(t, all, 1)
		assert.Equal(t, "web", all[0].Name)

		mine, err := c.List(ctx, "default")
		require.NoError(t, err)
		assert.Len(t, mine, 1)

		none, err := c.List(ctx, "other")
		require.NoError(t, err)
		assert.NotNil(t, none)
		assert.Empty(t, none)
	})

	t.Run("logs", func(t *testing.T) {
		from := f.Runtime.Store().Head() + 1
		_, err := c.Deploy(ctx, state.Spec{
			Name: "echo", Restart: state.RestartNever,
			Command: []string{"sh", "-c", "echo hello-from-solo; echo second line"},
		})
		require.NoError(t, err)
		// The process wrote to its log file before it exited.
		f.WaitEvent(t, from, string(state.TypeServiceExited), "default", "echo")
		var buf bytes.Buffer
		require.NoError(t, c.Logs(ctx, "default", "echo", -1, false, &buf))
		assert.Equal(t, "hello-from-solo\nsecond line\n", buf.String())

		buf.Reset()
		require.NoError(t, c.Logs(ctx, "default", "echo", 1, false, &buf))
		assert.Equal(t, "second line\n", buf.String())

		buf.Reset()
		require.NoError(t, c.Logs(ctx, "default", "echo", 0, false, &buf))
		assert.Empty(t, buf.String())
	})

	t.Run("logs follow", func(t *testing.T) {
		_, err := c.Deploy(ctx, state.Spec{
			Name:    "ticker",
			Command: []string{"sh", "-c", "while :; do echo tick; sleep 0.02; done"},
		})
		require.NoError(t, err)
		fctx, cancel := context.WithTimeout(ctx, apitest.WaitTimeout)
		defer cancel()
		w := &untilWriter{want: "tick\ntick\n", done: cancel}
		err = c.Logs(fctx, "default", "ticker", 0, true, w)
		require.ErrorIs(t, err, context.Canceled, "follow ended otherwise: %v", err)
		assert.Contains(t, w.String(), "tick\ntick\n")
		require.NoError(t, c.Kill(ctx, "default", "ticker"))
	})

	t.Run("kill", func(t *testing.T) {
		require.NoError(t, c.Kill(ctx, "default", "web"))
		view, err := c.Status(ctx, "default", "web")
		require.NoError(t, err)
		assert.Equal(t, state.StateKilled, view.State)
		assert.Zero(t, view.PID)
		require.NoError(t, c.Kill(ctx, "default", "web"), "killing twice")

		err = c.Kill(ctx, "default", "ghost")
		assert.True(t, client.IsNotFound(err), "kill ghost: %v", err)
		_, err = c.Status(ctx, "default", "ghost")
		assert.True(t, client.IsNotFound(err), "status ghost: %v", err)
	})

	t.Run("events", func(t *testing.T) {
		head := f.Runtime.Store().Head()
		var all []eventstore.Envelope
		require.NoError(t, c.Events(ctx, 0, false, func(env eventstore.Envelope) error {
			all = append(all, env)
			return nil
		}))
		require.GreaterOrEqual(t, uint64(len(all)), head)
		for i, env := range all {
			require.Equal(t, uint64(i+1), env.Pos, "positions are not 1, 2, 3...")
		}
		assert.Equal(t, "system_started", all[0].Type)

		var tail []eventstore.Envelope
		require.NoError(t, c.Events(ctx, 3, false, func(env eventstore.Envelope) error {
			tail = append(tail, env)
			return nil
		}))
		require.NotEmpty(t, tail)
		assert.Equal(t, uint64(3), tail[0].Pos, "from=3 not honoured")

		stop := errors.New("stop")
		n := 0
		err := c.Events(ctx, 1, false, func(eventstore.Envelope) error {
			if n++; n == 2 {
				return stop
			}
			return nil
		})
		assert.ErrorIs(t, err, stop)
		assert.Equal(t, 2, n)
	})

	t.Run("events follow", func(t *testing.T) {
		fctx, cancel := context.WithTimeout(ctx, apitest.WaitTimeout)
		defer cancel()
		from := f.Runtime.Store().Head() + 1
		got := make(chan eventstore.Envelope, 64)
		var wg sync.WaitGroup
		var ferr error
		wg.Go(func() {
			ferr = c.Events(fctx, from, true, func(env eventstore.Envelope) error {
				got <- env
				return nil
			})
		})
		_, err := c.Deploy(ctx, sleeper("default", "live"))
		require.NoError(t, err)
		var last uint64
		for env := range got {
			require.Greater(t, env.Pos, last)
			require.GreaterOrEqual(t, env.Pos, from)
			last = env.Pos
			if env.Type == string(state.TypeServiceDeployed) && env.Subject == "live" {
				assert.Equal(t, "local", env.Actor)
				break
			}
		}
		cancel()
		wg.Wait()
		assert.ErrorIs(t, ferr, context.Canceled)
		require.NoError(t, c.Kill(ctx, "default", "live"))
	})

	t.Run("db check", func(t *testing.T) {
		rep, err := c.DBCheck(ctx)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, rep.Events, f.Runtime.Store().Head()-1)
		assert.NotZero(t, rep.Streams)
	})

	t.Run("db backup", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "backup.db")
		out, err := os.Create(path)
		require.NoError(t, err)
		n, err := c.DBBackup(ctx, out)
		require.NoError(t, err)
		require.NoError(t, out.Close())
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, fi.Size(), n)
		rep := apitest.CheckLog(t, path)
		assert.NotZero(t, rep.Events)
	})
}

func TestClient_Unreachable(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "solo")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })

	// A socket file that nobody listens on any more.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	require.NoError(t, err)
	l.SetUnlinkOnClose(false)
	require.NoError(t, l.Close())

	// A TCP port that refuses.
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := tl.Addr().String()
	require.NoError(t, tl.Close())

	cases := []struct {
		name   string
		opts   client.Options
		target string
	}{
		{"missing socket", client.Options{Socket: filepath.Join(dir, "none.sock")}, filepath.Join(dir, "none.sock")},
		{"stale socket", client.Options{Socket: stale}, stale},
		{"refused port", client.Options{Addr: refused}, refused},
		{"refused URL", client.Options{Addr: "http://" + refused}, refused},
		{"addr wins over socket", client.Options{Addr: refused, Socket: stale}, refused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New(tc.opts)
			require.NoError(t, err)
			err = c.Health(ctx)
			require.ErrorIs(t, err, client.ErrUnreachable)
			assert.Contains(t, err.Error(), tc.target)
			var ae *client.APIError
			assert.False(t, errors.As(err, &ae))

			_, err = c.Deploy(ctx, sleeper("", "x"))
			require.ErrorIs(t, err, client.ErrUnreachable)
			err = c.Events(ctx, 0, true, func(eventstore.Envelope) error { return nil })
			require.ErrorIs(t, err, client.ErrUnreachable)
		})
	}
}

func TestClient_New(t *testing.T) {
	for _, bad := range []client.Options{
		{},
		{Addr: "no-port"},
		{Addr: "ftp://host:1"},
		{Addr: "http://"},
	} {
		_, err := client.New(bad)
		assert.Error(t, err, "%+v", bad)
	}
	for _, good := range []client.Options{
		{Socket: "/run/solo.sock"},
		{Addr: "127.0.0.1:7070"},
		{Addr: "https://solo.example:7070/"},
	} {
		_, err := client.New(good)
		assert.NoError(t, err, "%+v", good)
	}
}

func TestClient_InvalidNameNeverSent(t *testing.T) {
	f := apitest.MustServe(t, apitest.Options{})
	c := f.Client(t, client.Options{})
	head := f.Runtime.Store().Head()
	for _, name := range []string{"..", "../x", "UPPER", "a/b", ""} {
		_, err := c.Status(context.Background(), "default", name)
		assert.ErrorIs(t, err, state.ErrInvalidName, "%q", name)
		assert.True(t, client.IsInvalid(err))
		err = c.Kill(context.Background(), "default", name)
		assert.ErrorIs(t, err, state.ErrInvalidName, "%q", name)
	}
	assert.Equal(t, head, f.Runtime.Store().Head())
}

// untilWriter collects what it is given and calls done once it holds want.
type untilWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	done func()
}

func (w *untilWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if strings.Contains(w.buf.String(), w.want) {
		w.done()
	}
	return len(b), nil
}

func (w *untilWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
