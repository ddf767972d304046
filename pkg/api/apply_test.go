package api_test

import (
	"context"
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
		assert.Equal(t, api.CodeInvalid, ae.Code)
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
