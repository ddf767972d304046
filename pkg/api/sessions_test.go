package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/api"
	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/kernel/kerneltest"
	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// kernelCtx bounds a session test: a kernel takes a few seconds to start,
// more under -race on a loaded machine.
func kernelCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// kernelOptions are fixture options whose sessions run the test's python
// (failing the test, never skipping, when it has no ipykernel).
func kernelOptions(t *testing.T, o apitest.Options) apitest.Options {
	t.Helper()
	// Directly under /tmp, not t.TempDir's 0700 parent: a kernel of a
	// tenant other than the default runs as that tenant's user, which
	// must pass through every parent of its session's directory.
	dir, err := os.MkdirTemp("", "solo-api-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	o.Runtime = solo.Options{Python: kerneltest.Python(t), DataDir: dir}
	return o
}

// errorReply checks that a reply is a JSON [wire.ErrorBody] and returns it.
func errorReply(t *testing.T, status int, ctype string, body []byte) wire.ErrorBody {
	t.Helper()
	assert.Equal(t, "application/json", ctype)
	var eb wire.ErrorBody
	require.NoError(t, json.Unmarshal(body, &eb), "body: %s", body)
	assert.NotEmpty(t, eb.Error)
	return eb
}

func TestSessions_BadInput(t *testing.T) {
	ctx := kernelCtx(t)
	f := apitest.MustServe(t, kernelOptions(t, apitest.Options{API: api.Options{MaxBodyBytes: 1024}}))
	c := f.Client(t, client.Options{})
	// A real session with an ended task, so that "not found" is about the
	// name or the id, not an empty world; once its task ended the session
	// writes nothing more, and the head is stable.
	_, err := c.CreateSession(ctx, wire.CreateSessionRequest{Name: "nb"})
	require.NoError(t, err)
	done, err := c.Submit(ctx, "default", "nb", wire.SubmitRequest{Code: "x = 1"}, true)
	require.NoError(t, err)
	require.Equal(t, state.TaskStateCompleted, done.State, "%+v", done)
	task := "/v1/tasks/" + done.ID
	ghost := session.NewTaskID()
	long := strings.Repeat("n", session.MaxNameLen+1) // a valid name, too long for a session's service

	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
		field                    string // expected ErrorBody.Field, if any
		mention                  string // the error message must contain it
	}{
		{"unknown field in create", "POST", "/v1/sessions", `{"name":"x","kernal":"python3"}`, 400, wire.CodeInvalid, "", `"kernal"`},
		{"unknown field in submit", "POST", "/v1/sessions/default/nb/tasks", `{"code":"1","cod":"2"}`, 400, wire.CodeInvalid, "", `"cod"`},
		{"malformed JSON", "POST", "/v1/sessions", `{"name":`, 400, wire.CodeInvalid, "", "body"},
		{"empty body", "POST", "/v1/sessions/default/nb/tasks", ``, 400, wire.CodeInvalid, "", "empty"},
		{"trailing garbage", "POST", "/v1/sessions/default/nb/tasks", `{"code":"1"} {"code":"2"}`, 400, wire.CodeInvalid, "", "after"},
		{"oversized body", "POST", "/v1/sessions/default/nb/tasks", `{"code":"` + strings.Repeat("a", 2048) + `"}`, 413, wire.CodeTooLarge, "", "1024"},
		{"wrong type", "POST", "/v1/sessions", `{"name":7}`, 400, wire.CodeInvalid, "name", "name"},
		{"bad session name", "POST", "/v1/sessions", `{"name":"../x"}`, 400, wire.CodeInvalid, "", "name"},
		{"upper-case session name", "POST", "/v1/sessions", `{"name":"UPPER"}`, 400, wire.CodeInvalid, "", "UPPER"},
		{"no session name", "POST", "/v1/sessions", `{}`, 400, wire.CodeInvalid, "", "name"},
		{"session name too long", "POST", "/v1/sessions", `{"name":"` + long + `"}`, 400, wire.CodeInvalid, "", "name"},
		{"bad tenant in create", "POST", "/v1/sessions", `{"tenant":"A B","name":"x"}`, 400, wire.CodeInvalid, "", "tenant"},
		{"unknown kernel", "POST", "/v1/sessions", `{"name":"r","kernel":"ruby"}`, 400, wire.CodeInvalid, "", "ruby"},
		{"relative python", "POST", "/v1/sessions", `{"name":"r","python":"python3"}`, 400, wire.CodeInvalid, "", "absolute"},
		{"session exists", "POST", "/v1/sessions", `{"name":"nb"}`, 409, wire.CodeConflict, "", "default/nb"},
		{"bad name in path", "GET", "/v1/sessions/default/UPPER", "", 400, wire.CodeInvalid, "name", "UPPER"},
		{"bad tenant in path", "DELETE", "/v1/sessions/Bad/nb", "", 400, wire.CodeInvalid, "tenant", "Bad"},
		{"bad name in a submit path", "POST", "/v1/sessions/default/a%20b/tasks", `{"code":"1"}`, 400, wire.CodeInvalid, "name", "name"},
		{"escaped dot-dot", "GET", "/v1/sessions/default/..%2Fnb", "", 400, wire.CodeInvalid, "", "canonical"},
		{"bad tenant in query", "GET", "/v1/sessions?tenant=A%20B", "", 400, wire.CodeInvalid, "tenant", "tenant"},
		{"unknown session", "GET", "/v1/sessions/default/ghost", "", 404, wire.CodeNotFound, "", "default/ghost"},
		{"remove unknown session", "DELETE", "/v1/sessions/default/ghost", "", 404, wire.CodeNotFound, "", "default/ghost"},
		{"submit to a missing session", "POST", "/v1/sessions/default/ghost/tasks", `{"code":"print(1)"}`, 404, wire.CodeNotFound, "", "default/ghost"},
		{"checkpoint of a missing session", "POST", "/v1/sessions/default/ghost/tasks", `{"kind":"checkpoint","label":"one"}`, 404, wire.CodeNotFound, "", "default/ghost"},
		{"unknown kind", "POST", "/v1/sessions/default/nb/tasks", `{"kind":"shell","code":"ls"}`, 400, wire.CodeInvalid, "kind", "kind"},
		{"unknown kind to a missing session", "POST", "/v1/sessions/default/ghost/tasks", `{"kind":"exec","code":"1"}`, 400, wire.CodeInvalid, "kind", "kind"},
		{"bad checkpoint label", "POST", "/v1/sessions/default/nb/tasks", `{"kind":"checkpoint","label":"../x"}`, 400, wire.CodeInvalid, "", "label"},
		{"no restore label", "POST", "/v1/sessions/default/nb/tasks", `{"kind":"restore"}`, 400, wire.CodeInvalid, "", "label"},
		{"bad wait on submit", "POST", "/v1/sessions/default/nb/tasks?wait=maybe", `{"code":"1"}`, 400, wire.CodeInvalid, "wait", "maybe"},
		{"unknown task", "GET", "/v1/tasks/" + ghost, "", 404, wire.CodeNotFound, "", ghost},
		{"wait on an unknown task", "GET", "/v1/tasks/" + ghost + "?wait=1", "", 404, wire.CodeNotFound, "", ghost},
		{"output of an unknown task", "GET", "/v1/tasks/" + ghost + "/output?follow=1", "", 404, wire.CodeNotFound, "", ghost},
		{"cancel an unknown task", "POST", "/v1/tasks/" + ghost + "/cancel", "", 404, wire.CodeNotFound, "", ghost},
		{"bad wait on a task", "GET", task + "?wait=maybe", "", 400, wire.CodeInvalid, "wait", "maybe"},
		{"bad follow", "GET", task + "/output?follow=maybe", "", 400, wire.CodeInvalid, "follow", "maybe"},
		{"asset path with dot-dot", "POST", "/v1/sessions/default/nb/assets", `{"path":"../nb/kernel.json"}`, 400, wire.CodeInvalid, "", "escapes the session's directory"},
		{"absolute asset path", "POST", "/v1/sessions/default/nb/assets", `{"path":"/etc/passwd"}`, 400, wire.CodeInvalid, "", "absolute"},
		{"asset path of Solo's own", "POST", "/v1/sessions/default/nb/assets", `{"path":"kernel.json"}`, 400, wire.CodeInvalid, "", "Solo's own"},
		{"asset path of no file", "POST", "/v1/sessions/default/nb/assets", `{"path":"nope.csv"}`, 400, wire.CodeInvalid, "", "no such file"},
		{"no asset path", "POST", "/v1/sessions/default/nb/assets", `{}`, 400, wire.CodeInvalid, "", "empty"},
		{"unknown field in an asset", "POST", "/v1/sessions/default/nb/assets", `{"paht":"x"}`, 400, wire.CodeInvalid, "", `"paht"`},
		{"asset of a missing session", "POST", "/v1/sessions/default/ghost/assets", `{"path":"x"}`, 404, wire.CodeNotFound, "", "default/ghost"},
		{"assets of a missing session", "GET", "/v1/sessions/default/ghost/assets", "", 404, wire.CodeNotFound, "", "default/ghost"},
		{"assets with a bad name", "GET", "/v1/sessions/default/UPPER/assets", "", 400, wire.CodeInvalid, "name", "UPPER"},
		{"restart a session that is not lost", "POST", "/v1/sessions/default/nb/restart", `{}`, 409, wire.CodeConflict, "", "session not lost: it runs on node this one"},
		{"restart a missing session", "POST", "/v1/sessions/default/ghost/restart", `{}`, 404, wire.CodeNotFound, "", "default/ghost"},
		{"restart with a bad name", "POST", "/v1/sessions/default/UPPER/restart", `{}`, 400, wire.CodeInvalid, "name", "UPPER"},
		{"unknown field in restart", "POST", "/v1/sessions/default/nb/restart", `{"pyton":"/x"}`, 400, wire.CodeInvalid, "", `"pyton"`},
		{"wrong method on sessions", "PUT", "/v1/sessions", `{}`, 405, wire.CodeInvalid, "", "PUT"},
		{"wrong method on a task", "DELETE", task, "", 405, wire.CodeInvalid, "", "DELETE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			head := f.Runtime.Store().Head()
			status, ctype, body := do(t, f, tc.method, tc.path, tc.body)
			assert.Equal(t, tc.status, status, "body: %s", body)
			eb := errorReply(t, status, ctype, body)
			assert.Equal(t, tc.code, eb.Code)
			assert.Contains(t, eb.Error, tc.mention)
			if tc.field != "" {
				assert.Equal(t, tc.field, eb.Field)
			}
			assert.Equal(t, head, f.Runtime.Store().Head(), "a refused request wrote to the log")
		})
	}

	vs, err := c.Sessions(ctx, "")
	require.NoError(t, err)
	require.Len(t, vs, 1, "a refused create made a session")
	assert.Equal(t, "nb", vs[0].Name)
	v, err := c.Session(ctx, "default", "nb")
	require.NoError(t, err)
	assert.Zero(t, v.Pending, "a refused submit queued a task")
	assert.Equal(t, 1, v.Done)
}

func TestSessions_TenantScope(t *testing.T) {
	ctx := kernelCtx(t)
	authorize := func(r *http.Request) (api.Principal, error) {
		switch r.Header.Get("Authorization") {
		case "Bearer admin":
			return api.Principal{Actor: "tok-admin"}, nil
		case "Bearer a":
			return api.Principal{Actor: "tok-a", Tenant: "a"}, nil
		}
		return api.Principal{}, &api.AuthError{Msg: "unknown token"}
	}
	f := apitest.MustServe(t, kernelOptions(t, apitest.Options{API: api.Options{Authorize: authorize}}))
	admin := f.Client(t, client.Options{Token: "admin"})
	a := f.Client(t, client.Options{Token: "a"})

	_, err := admin.CreateSession(ctx, wire.CreateSessionRequest{Tenant: "b", Name: "secret"})
	require.NoError(t, err)
	mine, err := a.CreateSession(ctx, wire.CreateSessionRequest{Name: "mine"}) // lands in a's own tenant
	require.NoError(t, err)
	assert.Equal(t, "a", mine.Tenant)

	// A task of each; once both ended the sessions write nothing more.
	hidden, err := admin.Submit(ctx, "b", "secret", wire.SubmitRequest{Code: "print('hidden')"}, true)
	require.NoError(t, err)
	require.Equal(t, state.TaskStateCompleted, hidden.State, "%+v", hidden)
	own, err := a.Submit(ctx, "a", "mine", wire.SubmitRequest{Code: "print('own')"}, true)
	require.NoError(t, err)
	require.Equal(t, state.TaskStateCompleted, own.State, "%+v", own)
	var out bytes.Buffer
	require.NoError(t, a.TaskOutput(ctx, own.ID, false, &out))
	assert.Equal(t, "own\n", out.String())

	t.Run("another tenant's session does not exist", func(t *testing.T) {
		head := f.Runtime.Store().Head()
		_, hiddenErr := a.Session(ctx, "b", "secret")
		_, missingErr := a.Session(ctx, "b", "nothing")
		require.True(t, client.IsNotFound(hiddenErr), "session: %v", hiddenErr)
		require.True(t, client.IsNotFound(missingErr), "session: %v", missingErr)
		assert.Equal(t,
			strings.ReplaceAll(missingErr.Error(), "nothing", "secret"), hiddenErr.Error(),
			"a hidden session answers differently from a missing one")

		_, err := a.Submit(ctx, "b", "secret", wire.SubmitRequest{Code: "print('intruder')"}, false)
		assert.True(t, client.IsNotFound(err), "submit: %v", err)
		_, err = a.Submit(ctx, "b", "secret", wire.SubmitRequest{Kind: state.TaskCheckpoint, Label: "steal"}, false)
		assert.True(t, client.IsNotFound(err), "checkpoint: %v", err)
		err = a.RemoveSession(ctx, "b", "secret")
		assert.True(t, client.IsNotFound(err), "remove: %v", err)
		_, err = a.Assets(ctx, "b", "secret")
		assert.True(t, client.IsNotFound(err), "assets: %v", err)
		_, err = a.AddAsset(ctx, "b", "secret", "x")
		assert.True(t, client.IsNotFound(err), "add asset: %v", err)

		for _, r := range []struct{ method, path, body string }{
			{"GET", "/v1/sessions/b/secret", ""},
			{"DELETE", "/v1/sessions/b/secret", ""},
			{"POST", "/v1/sessions/b/secret/tasks", `{"code":"1"}`},
			{"GET", "/v1/sessions/b/secret/assets", ""},
			{"POST", "/v1/sessions/b/secret/assets", `{"path":"x"}`},
		} {
			status, ctype, body := do(t, f, r.method, r.path, r.body, "Authorization", "Bearer a")
			assert.Equal(t, http.StatusNotFound, status, "%s %s: %s", r.method, r.path, body)
			eb := errorReply(t, status, ctype, body)
			assert.Equal(t, wire.CodeNotFound, eb.Code)
		}
		assert.Equal(t, head, f.Runtime.Store().Head(), "a hidden session was written to")

		v, err := admin.Session(ctx, "b", "secret")
		require.NoError(t, err)
		assert.Equal(t, 1, v.Done, "the hidden session ran another task")
		assert.Zero(t, v.Pending)
	})

	t.Run("lists show only the principal's tenant", func(t *testing.T) {
		for _, tenant := range []string{"", "a", "b"} {
			vs, err := a.Sessions(ctx, tenant)
			require.NoError(t, err)
			for _, v := range vs {
				assert.Equal(t, "a", v.Tenant, "tenant %q", tenant)
				assert.NotEqual(t, "secret", v.Name)
			}
			if tenant != "b" {
				assert.Len(t, vs, 1, "tenant %q", tenant)
			} else {
				assert.Empty(t, vs)
			}
		}
		status, ctype, body := do(t, f, "GET", "/v1/sessions?tenant=b", "", "Authorization", "Bearer a")
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, "application/json", ctype)
		assert.JSONEq(t, `[]`, string(body))

		all, err := admin.Sessions(ctx, "")
		require.NoError(t, err)
		assert.Len(t, all, 2)
		bs, err := admin.Sessions(ctx, "b")
		require.NoError(t, err)
		require.Len(t, bs, 1)
		assert.Equal(t, "secret", bs[0].Name)
	})

	t.Run("another tenant's tasks do not exist", func(t *testing.T) {
		head := f.Runtime.Store().Head()
		ghost := session.NewTaskID()
		_, hiddenErr := a.Task(ctx, hidden.ID, false)
		_, missingErr := a.Task(ctx, ghost, false)
		require.True(t, client.IsNotFound(hiddenErr), "task: %v", hiddenErr)
		require.True(t, client.IsNotFound(missingErr), "task: %v", missingErr)
		assert.Equal(t,
			strings.ReplaceAll(missingErr.Error(), ghost, hidden.ID), hiddenErr.Error(),
			"a hidden task answers differently from a missing one")

		_, err := a.Task(ctx, hidden.ID, true)
		assert.True(t, client.IsNotFound(err), "task wait: %v", err)
		var out bytes.Buffer
		err = a.TaskOutput(ctx, hidden.ID, false, &out)
		assert.True(t, client.IsNotFound(err), "output: %v", err)
		err = a.TaskOutput(ctx, hidden.ID, true, &out)
		assert.True(t, client.IsNotFound(err), "followed output: %v", err)
		assert.Empty(t, out.String(), "a hidden task's output leaked")
		_, err = a.CancelTask(ctx, hidden.ID)
		assert.True(t, client.IsNotFound(err), "cancel: %v", err)

		for _, r := range []struct{ method, path string }{
			{"GET", "/v1/tasks/" + hidden.ID},
			{"GET", "/v1/tasks/" + hidden.ID + "/output"},
			{"GET", "/v1/tasks/" + hidden.ID + "/output?follow=1"},
			{"POST", "/v1/tasks/" + hidden.ID + "/cancel"},
		} {
			status, ctype, body := do(t, f, r.method, r.path, "", "Authorization", "Bearer a")
			assert.Equal(t, http.StatusNotFound, status, "%s %s: %s", r.method, r.path, body)
			eb := errorReply(t, status, ctype, body)
			assert.Equal(t, wire.CodeNotFound, eb.Code)
			assert.NotContains(t, string(body), "hidden\\n", "a hidden task's output leaked")
		}
		assert.Equal(t, head, f.Runtime.Store().Head(), "a hidden task was written to")

		// The admin still sees it, unchanged.
		tk, err := admin.Task(ctx, hidden.ID, false)
		require.NoError(t, err)
		assert.Equal(t, state.TaskStateCompleted, tk.State)
		out.Reset()
		require.NoError(t, admin.TaskOutput(ctx, hidden.ID, false, &out))
		assert.Equal(t, "hidden\n", out.String())
	})

	t.Run("creating a session in another tenant is denied", func(t *testing.T) {
		head := f.Runtime.Store().Head()
		_, err := a.CreateSession(ctx, wire.CreateSessionRequest{Tenant: "b", Name: "intruder"})
		assert.True(t, client.IsDenied(err), "create in b: %v", err)
		assert.Equal(t, head, f.Runtime.Store().Head())
		bs, err := admin.Sessions(ctx, "b")
		require.NoError(t, err)
		assert.Len(t, bs, 1)
	})
}
