package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/api"
	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

func TestServer_Apply(t *testing.T) {
	ctx := context.Background()
	f := apitest.MustServe(t, apitest.Options{})
	c := f.Client(t, client.Options{})
	req := solo.ApplyRequest{Services: []state.Spec{sleeper("", "web"), sleeper("b", "api")}}

	from := f.Runtime.Store().Head() + 1
	res, err := c.Apply(ctx, req)
	require.NoError(t, err)
	require.Len(t, res.Items, 2)
	assert.Equal(t, solo.ApplyCreate, res.Items[0].Action)
	assert.Equal(t, "default", res.Items[0].Tenant)
	assert.Equal(t, res.FirstPos+1, res.LastPos)
	f.WaitEvent(t, from, string(state.TypeServiceStarted), "default", "web")
	f.WaitEvent(t, from, string(state.TypeServiceStarted), "b", "api")

	t.Run("again: unchanged, nothing written", func(t *testing.T) {
		head := f.Runtime.Store().Head()
		res, err := c.Apply(ctx, req)
		require.NoError(t, err)
		assert.Equal(t, 2, res.Count(solo.ApplyUnchanged))
		assert.Equal(t, head, f.Runtime.Store().Head())
	})

	t.Run("a bad entry answers 400 naming its path, writes nothing", func(t *testing.T) {
		head := f.Runtime.Store().Head()
		bad := solo.ApplyRequest{Services: []state.Spec{sleeper("", "new"), {Name: "x"}}, Prune: true}
		_, err := c.Apply(ctx, bad)
		var ae *client.APIError
		require.True(t, errors.As(err, &ae), "%v", err)
		assert.Equal(t, http.StatusBadRequest, ae.Status)
		assert.Equal(t, wire.CodeInvalid, ae.Code)
		assert.Equal(t, "services[1].command", ae.Field)
		assert.Contains(t, ae.Message, "services[1].command:")
		assert.Equal(t, head, f.Runtime.Store().Head())
	})

	t.Run("unknown fields and garbage are refused", func(t *testing.T) {
		status, _, body := do(t, f, "POST", "/v1/apply", `{"services":[],"prun":true}`)
		assert.Equal(t, 400, status, "%s", body)
		status, _, body = do(t, f, "POST", "/v1/apply", `{"services":[]} x`)
		assert.Equal(t, 400, status, "%s", body)
	})

	t.Run("dry run with prune plans and writes nothing", func(t *testing.T) {
		head := f.Runtime.Store().Head()
		res, err := c.Apply(ctx, solo.ApplyRequest{Services: []state.Spec{sleeper("b", "other")}, Prune: true, DryRun: true})
		require.NoError(t, err)
		assert.True(t, res.DryRun)
		require.Len(t, res.Items, 2)
		assert.Equal(t, solo.ApplyPrune, res.Items[1].Action)
		assert.Equal(t, "api", res.Items[1].Name)
		assert.Equal(t, head, f.Runtime.Store().Head())
	})
}

func TestServer_Apply_TenantScope(t *testing.T) {
	ctx := context.Background()
	authorize := func(r *http.Request) (api.Principal, error) {
		if r.Header.Get("Authorization") == "Bearer a" {
			return api.Principal{Actor: "tok-a", Tenant: "a"}, nil
		}
		return api.Principal{Actor: "tok-admin"}, nil
	}
	f := apitest.MustServe(t, apitest.Options{API: api.Options{Authorize: authorize}})
	a := f.Client(t, client.Options{Token: "a"})

	head := f.Runtime.Store().Head()
	_, err := a.Apply(ctx, solo.ApplyRequest{Services: []state.Spec{sleeper("", "mine"), sleeper("b", "theirs")}})
	require.True(t, client.IsDenied(err), "%v", err)
	assert.Equal(t, head, f.Runtime.Store().Head())

	res, err := a.Apply(ctx, solo.ApplyRequest{Services: []state.Spec{sleeper("", "mine")}})
	require.NoError(t, err)
	assert.Equal(t, "a", res.Items[0].Tenant)
	env := f.WaitEvent(t, head+1, string(state.TypeServiceDeployed), "a", "mine")
	assert.Equal(t, "tok-a", env.Actor)
}

// A body that the JSON decoder would read only in part (a key given twice,
// the last kept) is refused whole: before, its prune killed the services of
// the part it dropped.
func TestServer_Apply_Ambiguous(t *testing.T) {
	ctx := context.Background()
	f := apitest.MustServe(t, apitest.Options{})
	from := f.Runtime.Store().Head() + 1
	_, err := f.Client(t, client.Options{}).Apply(ctx, solo.ApplyRequest{Services: []state.Spec{sleeper("", "web"), sleeper("", "worker")}})
	require.NoError(t, err)
	f.WaitEvent(t, from, string(state.TypeServiceStarted), "default", "web")
	f.WaitEvent(t, from, string(state.TypeServiceStarted), "default", "worker")

	const web, worker = `{"name":"web","command":["sleep","1000"]}`, `{"name":"worker","command":["sleep","1000"]}`
	cases := []struct {
		name, body, field, want string
	}{
		{"services twice", `{"services":[` + web + `,` + worker + `],"prune":true,"services":[` + web + `]}`, "services", `key "services" is given twice`},
		{"services twice, in another case", `{"services":[` + web + `,` + worker + `],"Services":[` + web + `],"prune":true}`, "services", `key "Services" repeats "services"`},
		{"prune twice", `{"services":[` + web + `],"prune":false,"PRUNE":true}`, "prune", `"PRUNE" repeats "prune"`},
		{"a name twice in an entry", `{"services":[` + web + `,{"name":"worker","command":["sleep","1000"],"Name":"web"}],"prune":true}`, "services[1].name", `"Name" repeats "name"`},
		{"an env key twice", `{"services":[{"name":"web","command":["sleep","1000"],"env":{"A":"1","A":"2"}}]}`, "services[0].env.A", `key "A" is given twice`},
		{"prune with no services", `{"services":[],"prune":true}`, "services", "no services to apply"},
		{"a session's service", `{"services":[{"name":"session.nb","command":["sleep","1000"]}]}`, "services[0].name", "kernel session"},
		{"a tenant typo that would move a pruned service", `{"services":[` + web + `,{"tenant":"defualt","name":"worker","command":["sleep","1000"]}],"prune":true}`, "services[1].tenant", `"defualt" has no services yet`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			head := f.Runtime.Store().Head()
			status, ctype, body := do(t, f, "POST", "/v1/apply", c.body)
			require.Equal(t, http.StatusBadRequest, status, "%s", body)
			eb := errorReply(t, status, ctype, body)
			assert.Equal(t, wire.CodeInvalid, eb.Code)
			assert.Equal(t, c.field, eb.Field)
			assert.Contains(t, eb.Error, c.want)
			assert.Equal(t, head, f.Runtime.Store().Head(), "a refused apply wrote events")
			st, err := f.Runtime.Status("default", "worker")
			require.NoError(t, err)
			assert.Equal(t, state.StateRunning, st.State)
		})
	}

	t.Run("env keys differing in case are two variables", func(t *testing.T) {
		status, _, body := do(t, f, "POST", "/v1/apply", `{"services":[{"name":"web","command":["sleep","1000"],"env":{"PATH":"/bin","path":"x"}}],"dry_run":true}`)
		require.Equal(t, http.StatusOK, status, "%s", body)
		var res solo.ApplyResult
		require.NoError(t, json.Unmarshal(body, &res))
		assert.Equal(t, solo.ApplyUpdate, res.Items[0].Action)
	})
}
