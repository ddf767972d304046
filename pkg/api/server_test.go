package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/api"
	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

func sleeper(tenant, name string) state.Spec {
	return state.Spec{Tenant: tenant, Name: name, Command: []string{"sleep", "1000"}}
}

// do sends a raw request and returns the status, the content type and the
// body.
func do(t *testing.T, f *apitest.Fixture, method, path, body string, header ...string) (int, string, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.URL(path), rd)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.HTTP().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func TestServer_BadInput(t *testing.T) {
	f := apitest.MustServe(t, apitest.Options{API: api.Options{MaxBodyBytes: 1024}})
	// A real service, so that "not found" is about the name, not an empty world.
	_, err := f.Runtime.Deploy(context.Background(), sleeper("default", "web"))
	require.NoError(t, err)
	f.WaitEvent(t, 1, string(state.TypeServiceStarted), "default", "web")

	huge := `{"name":"big","command":["echo","` + strings.Repeat("a", 2048) + `"]}`
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
		field                    string // expected ErrorBody.Field, if any
		mention                  string // the error message must contain it
	}{
		{"malformed JSON", "POST", "/v1/services", `{"name": "x", "command": [`, 400, wire.CodeInvalid, "", "body"},
		{"not an object", "POST", "/v1/services", `[1, 2]`, 400, wire.CodeInvalid, "", "body"},
		{"empty body", "POST", "/v1/services", ``, 400, wire.CodeInvalid, "", "empty"},
		{"unknown field", "POST", "/v1/services", `{"name":"x","command":["true"],"comand":["oops"]}`, 400, wire.CodeInvalid, "", `"comand"`},
		{"wrong type", "POST", "/v1/services", `{"name":"x","command":"true"}`, 400, wire.CodeInvalid, "command", "command"},
		{"trailing garbage", "POST", "/v1/services", `{"name":"x","command":["true"]} {"name":"y"}`, 400, wire.CodeInvalid, "", "after"},
		{"oversized body", "POST", "/v1/services", huge, 413, wire.CodeTooLarge, "", "1024"},
		{"name with a path", "POST", "/v1/services", `{"name":"../x","command":["true"]}`, 400, wire.CodeInvalid, "name", "name"},
		{"upper-case name", "POST", "/v1/services", `{"name":"UPPER","command":["true"]}`, 400, wire.CodeInvalid, "name", "name"},
		{"no command", "POST", "/v1/services", `{"name":"x"}`, 400, wire.CodeInvalid, "command", "command"},
		{"bad signal", "POST", "/v1/services", `{"name":"x","command":["true"],"stop_signal":"SIGFOO"}`, 400, wire.CodeInvalid, "stop_signal", "SIGFOO"},
		{"unknown kind", "POST", "/v1/services", `{"name":"x","kind":"nope"}`, 400, wire.CodeInvalid, "", "nope"},
		{"command not found", "POST", "/v1/services", `{"name":"ok2","command":["/nonexistent/cmd"]}`, 400, wire.CodeInvalid, "command", "/nonexistent/cmd"},
		{"command not in PATH", "POST", "/v1/services", `{"name":"x","command":["sleep"],"env":{"PATH":"/nonexistent"}}`, 400, wire.CodeInvalid, "command", "sleep"},
		{"dir missing", "POST", "/v1/services", `{"name":"ok4","command":["sleep","1"],"dir":"/nonexistent/dir"}`, 400, wire.CodeInvalid, "dir", "/nonexistent/dir"},
		{"dir is a file", "POST", "/v1/services", `{"name":"x","command":["sleep","1"],"dir":"/etc/passwd"}`, 400, wire.CodeInvalid, "dir", "not a directory"},
		{"unknown user", "POST", "/v1/services", `{"name":"x","command":["true"],"user":"no-such-user-x"}`, 400, wire.CodeInvalid, "user", "no-such-user-x"},
		{"unknown group", "POST", "/v1/services", `{"name":"x","command":["true"],"group":"no-such-group-x"}`, 400, wire.CodeInvalid, "group", "no-such-group-x"},
		{"unknown groups", "POST", "/v1/services", `{"name":"x","command":["true"],"groups":["no-such-group-y"]}`, 400, wire.CodeInvalid, "groups", "no-such-group-y"},
		{"bad umask", "POST", "/v1/services", `{"name":"x","command":["true"],"umask":"0999"}`, 400, wire.CodeInvalid, "umask", "0999"},
		{"umask as a number", "POST", "/v1/services", `{"name":"x","command":["true"],"umask":22}`, 400, wire.CodeInvalid, "umask", "umask"},
		{"env file missing", "POST", "/v1/services", `{"name":"x","command":["true"],"env_file":["/nonexistent/app.env"]}`, 400, wire.CodeInvalid, "env_file", "/nonexistent/app.env"},
		{"env file relative", "POST", "/v1/services", `{"name":"x","command":["true"],"env_file":["app.env"]}`, 400, wire.CodeInvalid, "env_file", "absolute"},
		{"user on a kind", "POST", "/v1/services", `{"name":"x","kind":"nope","user":"root"}`, 400, wire.CodeInvalid, "user", "kind"},
		{"bad name in path", "GET", "/v1/services/default/UPPER", "", 400, wire.CodeInvalid, "name", "UPPER"},
		{"bad tenant in path", "DELETE", "/v1/services/Bad/web", "", 400, wire.CodeInvalid, "tenant", "Bad"},
		{"escaped dot-dot", "GET", "/v1/services/default/..%2Fweb", "", 400, wire.CodeInvalid, "", "canonical"},
		{"double slash", "GET", "/v1/services//web", "", 400, wire.CodeInvalid, "", "canonical"},
		{"bad tenant in query", "GET", "/v1/services?tenant=A%20B", "", 400, wire.CodeInvalid, "tenant", "tenant"},
		{"unknown service", "GET", "/v1/services/default/ghost", "", 404, wire.CodeNotFound, "", "default/ghost"},
		{"kill unknown service", "DELETE", "/v1/services/default/ghost", "", 404, wire.CodeNotFound, "", "default/ghost"},
		{"logs of unknown service", "GET", "/v1/services/default/ghost/logs", "", 404, wire.CodeNotFound, "", "default/ghost"},
		{"bad tail", "GET", "/v1/services/default/web/logs?tail=-1", "", 400, wire.CodeInvalid, "tail", "tail"},
		{"tail over the limit", "GET", "/v1/services/default/web/logs?tail=100001", "", 400, wire.CodeInvalid, "tail", "100000"},
		{"bad follow", "GET", "/v1/services/default/web/logs?follow=maybe", "", 400, wire.CodeInvalid, "follow", "maybe"},
		{"bad from", "GET", "/v1/events?from=first", "", 400, wire.CodeInvalid, "from", "first"},
		{"bad limit", "GET", "/v1/events?limit=-3", "", 400, wire.CodeInvalid, "limit", "limit"},
		{"bad service filter", "GET", "/v1/events?service=Web", "", 400, wire.CodeInvalid, "service", "Web"},
		{"bad log size", "POST", "/v1/services", `{"name":"x","command":["true"],"log":{"max_size":"10XB"}}`, 400, wire.CodeInvalid, "", "max_size"},
		{"log size too small", "POST", "/v1/services", `{"name":"x","command":["true"],"log":{"max_size":100}}`, 400, wire.CodeInvalid, "log.max_size", "4KiB"},
		{"bad log files", "POST", "/v1/services", `{"name":"x","command":["true"],"log":{"files":-1}}`, 400, wire.CodeInvalid, "log.files", "-1"},
		{"unknown log field", "POST", "/v1/services", `{"name":"x","command":["true"],"log":{"rotate":true}}`, 400, wire.CodeInvalid, "", "rotate"},
		{"unparsable memory_max", "POST", "/v1/services", `{"name":"x","command":["true"],"memory_max":"12 potatoes"}`, 400, wire.CodeInvalid, "", "memory_max"},
		{"memory_max under 1MiB", "POST", "/v1/services", `{"name":"x","command":["true"],"memory_max":"512KiB"}`, 400, wire.CodeInvalid, "memory_max", "1MiB"},
		{"negative cpu", "POST", "/v1/services", `{"name":"x","command":["true"],"cpu":-0.5}`, 400, wire.CodeInvalid, "cpu", "cores"},
		{"cpu as words", "POST", "/v1/services", `{"name":"x","command":["true"],"cpu":"half"}`, 400, wire.CodeInvalid, "", "cpu"},
		{"negative pids_max", "POST", "/v1/services", `{"name":"x","command":["true"],"pids_max":-1}`, 400, wire.CodeInvalid, "pids_max", "-1"},
		{"since without timestamps", "GET", "/v1/services/default/web/logs?since=1m", "", 400, wire.CodeInvalid, "since", "--log-timestamps"},
		{"timestamps without a stamper", "POST", "/v1/services", `{"name":"x","command":["true"],"log":{"timestamps":true}}`, 400, wire.CodeInvalid, "log.timestamps", "stamper"},
		{"bad since", "GET", "/v1/services/default/web/logs?since=soon", "", 400, wire.CodeInvalid, "since", "soon"},
		{"bad tenant filter", "GET", "/v1/events?tenant=a/b&follow=1", "", 400, wire.CodeInvalid, "tenant", "a/b"},
		{"why of unknown service", "GET", "/v1/services/default/ghost/why", "", 404, wire.CodeNotFound, "", "default/ghost"},
		{"bad why lines", "GET", "/v1/services/default/web/why?lines=x", "", 400, wire.CodeInvalid, "lines", "lines"},
		{"why lines over the limit", "GET", "/v1/services/default/web/why?lines=1001", "", 400, wire.CodeInvalid, "lines", "1000"},
		{"bad node name", "POST", "/v1/services", `{"name":"x","command":["true"],"nodes":["n1","N 2"]}`, 400, wire.CodeInvalid, "nodes", "N 2"},
		{"node named twice", "POST", "/v1/services", `{"name":"x","command":["true"],"nodes":["n1","n1"]}`, 400, wire.CodeInvalid, "nodes", "twice"},
		{"nodes as a string", "POST", "/v1/services", `{"name":"x","command":["true"],"nodes":"n1"}`, 400, wire.CodeInvalid, "nodes", "nodes"},
		{"nodes on a single machine", "POST", "/v1/services", `{"name":"x","command":["true"],"nodes":["n1"]}`, 400, wire.CodeInvalid, "nodes", "cluster"},
		{"wrong method", "PUT", "/v1/services", `{}`, 405, wire.CodeInvalid, "", "PUT"},
		{"wrong method on a service", "POST", "/v1/services/default/web", `{}`, 405, wire.CodeInvalid, "", "POST"},
		{"unknown route", "GET", "/v1/nothing", "", 404, wire.CodeNotFound, "", "/v1/nothing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			head := f.Runtime.Store().Head()
			status, ctype, body := do(t, f, tc.method, tc.path, tc.body)
			assert.Equal(t, tc.status, status, "body: %s", body)
			assert.Equal(t, "application/json", ctype)
			var eb wire.ErrorBody
			require.NoError(t, json.Unmarshal(body, &eb), "body: %s", body)
			assert.Equal(t, tc.code, eb.Code)
			assert.Contains(t, eb.Error, tc.mention)
			if tc.field != "" {
				assert.Equal(t, tc.field, eb.Field)
			}
			assert.Equal(t, head, f.Runtime.Store().Head(), "a refused request wrote to the log")
		})
	}

	t.Run("405 names the allowed methods", func(t *testing.T) {
		req, _ := http.NewRequest("PATCH", f.URL("/v1/services/default/web"), nil)
		resp, err := f.HTTP().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("Allow"), "DELETE")
		assert.Contains(t, resp.Header.Get("Allow"), "GET")
	})
}

func TestServer_TenantScope(t *testing.T) {
	ctx := context.Background()
	authorize := func(r *http.Request) (api.Principal, error) {
		switch r.Header.Get("Authorization") {
		case "Bearer admin":
			return api.Principal{Actor: "tok-admin"}, nil
		case "Bearer a":
			return api.Principal{Actor: "tok-a", Tenant: "a"}, nil
		case "Bearer wrong-scope":
			return api.Principal{}, &api.AuthError{Status: http.StatusForbidden, Msg: "token lacks scope deploy"}
		}
		return api.Principal{}, &api.AuthError{Msg: "unknown token"}
	}
	f := apitest.MustServe(t, apitest.Options{API: api.Options{Authorize: authorize}})
	admin := f.Client(t, client.Options{Token: "admin"})
	a := f.Client(t, client.Options{Token: "a"})

	from := f.Runtime.Store().Head() + 1
	_, err := admin.Deploy(ctx, sleeper("b", "secret"))
	require.NoError(t, err)
	_, err = a.Deploy(ctx, sleeper("", "mine")) // lands in a's own tenant
	require.NoError(t, err)
	f.WaitEvent(t, from, string(state.TypeServiceStarted), "b", "secret")
	f.WaitEvent(t, from, string(state.TypeServiceStarted), "a", "mine")

	t.Run("another tenant's service does not exist", func(t *testing.T) {
		head := f.Runtime.Store().Head()
		_, hidden := a.Status(ctx, "b", "secret")
		_, missing := a.Status(ctx, "b", "nothing")
		require.True(t, client.IsNotFound(hidden), "status: %v", hidden)
		require.True(t, client.IsNotFound(missing), "status: %v", missing)
		assert.Equal(t,
			strings.ReplaceAll(missing.Error(), "nothing", "secret"), hidden.Error(),
			"a hidden service answers differently from a missing one")

		err := a.Kill(ctx, "b", "secret")
		assert.True(t, client.IsNotFound(err), "kill: %v", err)
		err = a.Logs(ctx, "b", "secret", 10, false, io.Discard)
		assert.True(t, client.IsNotFound(err), "logs: %v", err)
		assert.Equal(t, head, f.Runtime.Store().Head())

		view, err := admin.Status(ctx, "b", "secret")
		require.NoError(t, err)
		assert.Equal(t, state.StateRunning, view.State, "the hidden service was touched")
	})

	t.Run("lists show only the principal's tenant", func(t *testing.T) {
		for _, tenant := range []string{"", "a", "b"} {
			views, err := a.List(ctx, tenant)
			require.NoError(t, err)
			for _, v := range views {
				assert.Equal(t, "a", v.Tenant)
			}
			if tenant != "b" {
				assert.Len(t, views, 1, "tenant %q", tenant)
			} else {
				assert.Empty(t, views)
			}
		}
		all, err := admin.List(ctx, "")
		require.NoError(t, err)
		assert.Len(t, all, 2)
	})

	t.Run("events show only the principal's tenant", func(t *testing.T) {
		n := 0
		require.NoError(t, a.Events(ctx, 0, false, func(env eventstore.Envelope) error {
			n++
			assert.Equal(t, "a", env.Tenant)
			if env.Type == string(state.TypeServiceDeployed) {
				assert.Equal(t, "tok-a", env.Actor, "the principal's actor was not recorded")
			}
			return nil
		}))
		assert.NotZero(t, n)
	})

	t.Run("writes and admin routes outside the tenant are denied", func(t *testing.T) {
		head := f.Runtime.Store().Head()
		_, err := a.Deploy(ctx, sleeper("b", "intruder"))
		assert.True(t, client.IsDenied(err), "deploy into b: %v", err)
		_, err = a.DBCheck(ctx)
		assert.True(t, client.IsDenied(err), "db check: %v", err)
		_, err = a.DBBackup(ctx, io.Discard)
		assert.True(t, client.IsDenied(err), "db backup: %v", err)
		assert.Equal(t, head, f.Runtime.Store().Head())
	})

	t.Run("refused credentials", func(t *testing.T) {
		before := metric(t, f, "solo_auth_failures_total")
		nobody := f.Client(t, client.Options{})
		_, err := nobody.List(ctx, "")
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, http.StatusUnauthorized, ae.Status)
		assert.Equal(t, wire.CodeUnauthorized, ae.Code)
		assert.True(t, client.IsDenied(err))

		scoped := f.Client(t, client.Options{Token: "wrong-scope"})
		_, err = scoped.List(ctx, "")
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, http.StatusForbidden, ae.Status)
		assert.Equal(t, wire.CodeDenied, ae.Code)
		assert.Equal(t, before+2, metric(t, f, "solo_auth_failures_total"))

		// Health is not authorised.
		require.NoError(t, nobody.Health(ctx))
	})
}

func TestServer_ReadyAndMetrics(t *testing.T) {
	ctx := context.Background()
	f := apitest.MustServe(t, apitest.Options{NotReady: true})
	c := f.Client(t, client.Options{})

	status, _, body := do(t, f, "GET", "/readyz", "")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.JSONEq(t, `{"error":"not ready: recovering","code":"unavailable"}`, string(body))
	err := c.Ready(ctx)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, wire.CodeUnavailable, ae.Code)

	f.Server.SetReady(true)
	status, _, body = do(t, f, "GET", "/readyz", "")
	assert.Equal(t, http.StatusOK, status)
	assert.JSONEq(t, `{"status":"ready"}`, string(body))
	require.NoError(t, c.Ready(ctx))

	status, _, body = do(t, f, "GET", "/healthz", "")
	assert.Equal(t, http.StatusOK, status)
	assert.JSONEq(t, `{"status":"ok"}`, string(body))

	appended := metric(t, f, "solo_events_appended_total")
	from := f.Runtime.Store().Head() + 1
	_, err = c.Deploy(ctx, sleeper("", "web"))
	require.NoError(t, err)
	f.WaitEvent(t, from, string(state.TypeServiceStarted), "default", "web")

	text := scrape(t, f)
	assert.Contains(t, text, `solo_services{state="running"} 1`)
	assert.Contains(t, text, `solo_services{state="failed"} 0`)
	assert.Contains(t, text, `solo_service_restarts{name="web",tenant="default"} 0`)
	assert.Contains(t, text, "solo_event_subscribers ")
	assert.Contains(t, text, "solo_append_commit_seconds_bucket")
	assert.Contains(t, text, `solo_http_requests_total{code="200",route="POST /v1/services"} 1`)
	assert.Contains(t, text, `solo_http_request_seconds_count{route="GET /readyz"} 4`)
	assert.GreaterOrEqual(t, metric(t, f, "solo_events_appended_total"), appended+2, "deployed and started were not counted")
}

func TestServer_EventsFraming(t *testing.T) {
	f := apitest.MustServe(t, apitest.Options{})
	head := f.Runtime.Store().Head()
	require.NotZero(t, head)

	t.Run("NDJSON up to the head", func(t *testing.T) {
		status, ctype, body := do(t, f, "GET", "/v1/events", "")
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, wire.ContentTypeNDJSON, ctype)
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		require.Len(t, lines, int(head))
		var env eventstore.Envelope
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &env))
		assert.Equal(t, uint64(1), env.Pos)
	})

	t.Run("limit and a from past the head", func(t *testing.T) {
		_, _, body := do(t, f, "GET", "/v1/events?limit=1", "")
		assert.Equal(t, 1, strings.Count(string(body), "\n"))
		status, _, body := do(t, f, "GET", "/v1/events?from="+strconv.FormatUint(head+100, 10), "")
		assert.Equal(t, http.StatusOK, status)
		assert.Empty(t, body)
	})

	t.Run("SSE", func(t *testing.T) {
		status, ctype, body := do(t, f, "GET", "/v1/events?from=1&limit=1", "", "Accept", "text/event-stream")
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, wire.ContentTypeSSE, ctype)
		frame := string(body)
		require.True(t, strings.HasPrefix(frame, "id: 1\nevent: system_started\ndata: {"), "frame: %q", frame)
		require.True(t, strings.HasSuffix(frame, "}\n\n"), "frame: %q", frame)
		data := strings.TrimSuffix(strings.SplitN(frame, "data: ", 2)[1], "\n\n")
		var env eventstore.Envelope
		require.NoError(t, json.Unmarshal([]byte(data), &env))
		assert.Equal(t, "system_started", env.Type)
	})

	t.Run("followed SSE streams live", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), apitest.WaitTimeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", f.URL("/v1/events?follow=1&from="+strconv.FormatUint(head+1, 10)), nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := f.HTTP().Do(req) // returns once headers are flushed, before any event
		require.NoError(t, err)
		defer resp.Body.Close()
		_, err = f.Runtime.Deploy(ctx, sleeper("", "live"))
		require.NoError(t, err)
		sc := bufio.NewScanner(resp.Body)
		require.True(t, sc.Scan())
		assert.Equal(t, "id: "+strconv.FormatUint(head+1, 10), sc.Text())
		require.True(t, sc.Scan())
		assert.Equal(t, "event: service_deployed", sc.Text())
	})
}

func TestServer_ServeEndsStreams(t *testing.T) {
	f := apitest.MustServe(t, apitest.Options{API: api.Options{ShutdownTimeout: time.Minute}})
	c := f.Client(t, client.Options{})
	// The service writes a line, then says so through a FIFO: the logs
	// stream, asked for after that, shows it is served by delivering the
	// line in its tail. (A line written while the stream starts could fall
	// between its tail and its follow, and never come.)
	wrote := filepath.Join(t.TempDir(), "wrote")
	require.NoError(t, syscall.Mkfifo(wrote, 0o600))
	_, err := f.Runtime.Deploy(context.Background(), state.Spec{Name: "web",
		Command: []string{"sh", "-c", `echo up; echo >"$0"; exec sleep 1000`, wrote}})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), apitest.WaitTimeout)
	defer cancel()
	opened := make(chan error, 1)
	go func() {
		// Opening a FIFO to read blocks until the writer opens it.
		b, err := os.ReadFile(wrote)
		if err == nil && len(b) == 0 {
			err = errors.New("empty")
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("the service never wrote its line")
	}
	eventsLive, logsLive := make(chan struct{}), make(chan struct{})
	var eventsOnce, logsOnce sync.Once
	var wg sync.WaitGroup
	var eventsErr, logsErr error
	wg.Go(func() {
		eventsErr = c.Events(ctx, 0, true, func(eventstore.Envelope) error {
			eventsOnce.Do(func() { close(eventsLive) })
			return nil
		})
	})
	wg.Go(func() {
		logsErr = c.Logs(ctx, "default", "web", 10, true, writerFunc(func(p []byte) (int, error) {
			logsOnce.Do(func() { close(logsLive) })
			return len(p), nil
		}))
	})
	// Stop only once both streams are served: before, Stop could come
	// before the logs request had connected, which then found no socket.
	for _, live := range []chan struct{}{eventsLive, logsLive} {
		select {
		case <-live:
		case <-ctx.Done():
			t.Fatal("a stream never delivered anything")
		}
	}

	start := time.Now()
	require.NoError(t, f.Stop())
	assert.Less(t, time.Since(start), 30*time.Second, "Serve waited out its shutdown timeout for followers")
	wg.Wait()
	assert.ErrorIs(t, eventsErr, io.ErrUnexpectedEOF)
	assert.ErrorIs(t, logsErr, io.ErrUnexpectedEOF)
	assert.NoError(t, ctx.Err())

	err = c.Health(context.Background())
	assert.ErrorIs(t, err, client.ErrUnreachable, "the socket still answers after Serve returned")
}

// writerFunc is an io.Writer made of a function.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestServer_ClosedRuntime(t *testing.T) {
	f := apitest.MustServe(t, apitest.Options{})
	c := f.Client(t, client.Options{})
	require.NoError(t, f.Runtime.Close(context.Background()))
	_, err := c.Deploy(context.Background(), sleeper("", "late"))
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusServiceUnavailable, ae.Status)
	assert.Equal(t, wire.CodeUnavailable, ae.Code)
	assert.False(t, errors.Is(err, client.ErrUnreachable))
}

// scrape returns the /metrics text.
func scrape(t *testing.T, f *apitest.Fixture) string {
	t.Helper()
	status, ctype, body := do(t, f, "GET", "/metrics", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, ctype, "text/plain")
	return string(body)
}

// metric returns the value of an unlabelled metric.
func metric(t *testing.T, f *apitest.Fixture, name string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(scrape(t, f), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			x, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return x
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// A client that does not read its followed events must not slow appends
// (I8); when it reads at last, it gets every event, in order.
func TestServer_SlowFollowerNeverBlocksAppends(t *testing.T) {
	f := apitest.MustServe(t, apitest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), apitest.WaitTimeout)
	defer cancel()
	from := f.Runtime.Store().Head() + 1
	const total = 6000 // ~3 MB of NDJSON: more than the socket's and the subscriber's buffers
	req, _ := http.NewRequestWithContext(ctx, "GET", f.URL("/v1/events?follow=1&from="+strconv.FormatUint(from, 10)+"&limit="+strconv.Itoa(total)), nil)
	resp, err := f.HTTP().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()

	// Noise events of a type the fold ignores, appended while nobody reads.
	data := json.RawMessage(`{"pad":"` + strings.Repeat("x", 400) + `"}`)
	for i := 0; i < total; i += 100 {
		batch := make([]eventstore.Event, 100)
		for j := range batch {
			batch[j] = eventstore.Event{Type: "test_noise", Tenant: "t", Subject: "noise", Data: data}
		}
		_, err := f.Runtime.Store().Append(ctx, batch...)
		require.NoError(t, err, "append blocked behind a slow follower")
	}
	assert.Positive(t, f.Runtime.Store().Stats().Overflows, "the follower never fell behind: the test proves nothing")

	dec := json.NewDecoder(resp.Body)
	want := from
	for {
		var env eventstore.Envelope
		if err := dec.Decode(&env); err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
		require.Equal(t, want, env.Pos)
		want++
	}
	assert.Equal(t, from+total, want)
}
