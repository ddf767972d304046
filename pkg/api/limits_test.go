package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/api"
	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// tenantTokens authorises "Bearer T" (or "Bearer T.N") as a token
// confined to tenant T, and a request without a token as the local admin.
func tenantTokens(r *http.Request) (api.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return api.Principal{Actor: api.LocalActor}, nil
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return api.Principal{}, &api.AuthError{Msg: "no bearer"}
	}
	tenant, _, _ := strings.Cut(tok, ".")
	return api.Principal{Actor: "tok-" + tok, Tenant: tenant}, nil
}

// rejected returns solo_api_rejected_total for tenant and limit (0 if
// absent).
func rejected(t *testing.T, f *apitest.Fixture, tenant, limit string) float64 {
	t.Helper()
	prefix := fmt.Sprintf(`solo_api_rejected_total{limit=%q,tenant=%q} `, limit, tenant)
	for line := range strings.SplitSeq(scrape(t, f), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			x, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return x
		}
	}
	return 0
}

// limitedReply checks a raw 429 of a limit and returns its body.
func limitedReply(t *testing.T, f *apitest.Fixture, method, path, body, token string) wire.ErrorBody {
	t.Helper()
	req, err := http.NewRequest(method, f.URL(path), strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := f.HTTP().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	after, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After is whole seconds")
	assert.Positive(t, after)
	var eb wire.ErrorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&eb))
	assert.Equal(t, wire.CodeLimited, eb.Code)
	return eb
}

// writtenAbout returns the types of the events since position from whose
// subject is one of subjects: a refused write must have written none.
// (Events of other subjects, such as the start of a service deployed
// before, may land meanwhile.)
func writtenAbout(t *testing.T, f *apitest.Fixture, from uint64, subjects ...string) []string {
	t.Helper()
	var out []string
	err := f.Client(t, client.Options{}).Events(context.Background(), from, false, func(env eventstore.Envelope) error {
		if slices.Contains(subjects, env.Subject) {
			out = append(out, env.Type)
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

func TestLimits_ServiceQuota(t *testing.T) {
	ctx := context.Background()
	f := apitest.MustServe(t, apitest.Options{
		API:     api.Options{Authorize: tenantTokens},
		Runtime: solo.Options{Quotas: state.Limits{Services: 2}},
	})
	beta := f.Client(t, client.Options{Token: "beta"})
	admin := f.Client(t, client.Options{})
	for _, name := range []string{"a", "b"} {
		_, err := beta.Deploy(ctx, sleeper("beta", name))
		require.NoError(t, err)
	}

	from := f.Runtime.Store().Head() + 1
	_, err := beta.Deploy(ctx, sleeper("beta", "c"))
	require.True(t, client.IsLimited(err), "deploy over the quota: %v", err)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, state.QuotaServices, ae.Limit)
	assert.Equal(t, solo.QuotaCountRetry, ae.RetryAfter)
	assert.Contains(t, ae.Message, "tenant beta is at its quota of 2 services (max_services)")
	eb := limitedReply(t, f, "POST", "/v1/services", `{"name":"c","command":["sleep","1000"]}`, "beta")
	assert.Equal(t, state.QuotaServices, eb.Limit)
	assert.Empty(t, writtenAbout(t, f, from, "c"), "a refused deploy wrote nothing")
	assert.Equal(t, 2.0, rejected(t, f, "beta", state.QuotaServices))

	// Another tenant has its own count; a redeploy of a service that
	// exists adds none; the operator is not bound.
	_, err = f.Client(t, client.Options{Token: "gamma"}).Deploy(ctx, sleeper("gamma", "c"))
	require.NoError(t, err)
	changed := sleeper("beta", "a")
	changed.Command = []string{"sleep", "999"}
	_, err = beta.Deploy(ctx, changed)
	require.NoError(t, err, "a redeploy at the quota")
	_, err = admin.Deploy(ctx, sleeper("beta", "by-admin"))
	require.NoError(t, err, "the local admin is not bound by a tenant's quota")

	// Stopped services count; removing two makes room for one.
	for _, name := range []string{"a", "by-admin"} {
		require.NoError(t, beta.Kill(ctx, "beta", name))
		_, err = beta.Deploy(ctx, sleeper("beta", "c"))
		require.True(t, client.IsLimited(err), "a stopped service still counts: %v", err)
		require.NoError(t, beta.Remove(ctx, "beta", name))
	}
	_, err = beta.Deploy(ctx, sleeper("beta", "c"))
	require.NoError(t, err, "a removed service makes room")
}

func TestLimits_ConcurrentDeploysAtQuota(t *testing.T) {
	ctx := context.Background()
	f := apitest.MustServe(t, apitest.Options{
		API:     api.Options{Authorize: tenantTokens},
		Runtime: solo.Options{Quotas: state.Limits{Services: 2}},
	})
	beta := f.Client(t, client.Options{Token: "beta"})
	_, err := beta.Deploy(ctx, sleeper("beta", "first"))
	require.NoError(t, err)

	start := make(chan struct{})
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = beta.Deploy(ctx, sleeper("beta", fmt.Sprintf("racer-%d", i)))
		}()
	}
	close(start)
	wg.Wait()
	admitted := 0
	for _, err := range errs {
		if err == nil {
			admitted++
		} else {
			require.True(t, client.IsLimited(err), "the other is refused by the quota: %v", err)
		}
	}
	require.Equal(t, 1, admitted, "exactly one of two deploys at the quota minus one: %v", errs)
	views, err := beta.List(ctx, "beta")
	require.NoError(t, err)
	require.Len(t, views, 2)
}

func TestLimits_ApplyOverQuotaRefusedWhole(t *testing.T) {
	ctx := context.Background()
	f := apitest.MustServe(t, apitest.Options{
		API:     api.Options{Authorize: tenantTokens},
		Runtime: solo.Options{Quotas: state.Limits{Services: 3}},
	})
	beta := f.Client(t, client.Options{Token: "beta"})
	res, err := beta.Deploy(ctx, sleeper("beta", "old"))
	require.NoError(t, err)
	f.WaitEvent(t, res.Pos, string(state.TypeServiceStarted), "beta", "old") // nothing more comes about it

	three := wire.ApplyRequest{Services: []state.Spec{sleeper("beta", "old"), sleeper("beta", "n1"), sleeper("beta", "n2"), sleeper("beta", "n3")}}
	from := f.Runtime.Store().Head() + 1
	_, err = beta.Apply(ctx, three)
	require.True(t, client.IsLimited(err), "apply over the quota: %v", err)
	assert.Contains(t, err.Error(), "tenant beta has 1 services and its quota is 3 (max_services): adding 3 would go over")
	assert.Empty(t, writtenAbout(t, f, from, "old", "n1", "n2", "n3"), "nothing of the apply was written")
	views, err := beta.List(ctx, "beta")
	require.NoError(t, err)
	assert.Len(t, views, 1)

	three.Services = three.Services[:3]
	applied, err := beta.Apply(ctx, three)
	require.NoError(t, err, "up to the quota")
	assert.Len(t, applied.Items, 3)
}

func TestLimits_SessionAndTaskQuotas(t *testing.T) {
	ctx := kernelCtx(t)
	o := kernelOptions(t, apitest.Options{API: api.Options{Authorize: tenantTokens}})
	o.Runtime.Quotas = state.Limits{Sessions: 1, Tasks: 2}
	f := apitest.MustServe(t, o)
	beta := f.Client(t, client.Options{Token: "beta"})

	_, err := beta.CreateSession(ctx, wire.CreateSessionRequest{Tenant: "beta", Name: "nb"})
	require.NoError(t, err)
	from := f.Runtime.Store().Head() + 1
	_, err = beta.CreateSession(ctx, wire.CreateSessionRequest{Tenant: "beta", Name: "nb2"})
	require.True(t, client.IsLimited(err), "a second session: %v", err)
	assert.Contains(t, err.Error(), "tenant beta is at its quota of 1 sessions (max_sessions)")
	limitedReply(t, f, "POST", "/v1/sessions", `{"tenant":"beta","name":"nb2"}`, "beta")
	assert.Empty(t, writtenAbout(t, f, from, "nb2", session.ServicePrefix+"nb2"), "a refused session wrote nothing")
	assert.Equal(t, 2.0, rejected(t, f, "beta", state.QuotaSessions))

	// One task runs (it is not queued); two wait behind it, the quota.
	from = f.Runtime.Store().Head() + 1
	busy, err := beta.Submit(ctx, "beta", "nb", wire.SubmitRequest{Code: "import time; time.sleep(600)"}, false)
	require.NoError(t, err)
	f.WaitEvent(t, from, string(state.TypeTaskStarted), "beta", "nb")
	var queued []*state.Task
	for range 2 {
		tk, err := beta.Submit(ctx, "beta", "nb", wire.SubmitRequest{Code: "1"}, false)
		require.NoError(t, err)
		queued = append(queued, tk)
	}
	from = f.Runtime.Store().Head() + 1
	_, err = beta.Submit(ctx, "beta", "nb", wire.SubmitRequest{Code: "2"}, false)
	require.True(t, client.IsLimited(err), "a third queued task: %v", err)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, state.QuotaTasks, ae.Limit)
	assert.Equal(t, solo.QuotaTasksRetry, ae.RetryAfter)
	limitedReply(t, f, "POST", "/v1/sessions/beta/nb/tasks", `{"code":"2"}`, "beta")
	assert.NotContains(t, writtenAbout(t, f, from, "nb"), string(state.TypeTaskSubmitted), "a refused task wrote nothing")

	_, err = beta.CancelTask(ctx, queued[0].ID)
	require.NoError(t, err)
	_, err = beta.Submit(ctx, "beta", "nb", wire.SubmitRequest{Code: "3"}, false)
	require.NoError(t, err, "a cancelled task makes room")
	_, err = beta.CancelTask(ctx, busy.ID)
	require.NoError(t, err)

	require.NoError(t, beta.RemoveSession(ctx, "beta", "nb"))
	_, err = beta.CreateSession(ctx, wire.CreateSessionRequest{Tenant: "beta", Name: "nb2"})
	require.NoError(t, err, "a removed session makes room")
}

func TestLimits_Rates(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_000_000, 0) // a still clock: nothing refills
	f := apitest.MustServe(t, apitest.Options{API: api.Options{
		Authorize: tenantTokens,
		Rates:     api.RateLimits{Token: 1, TokenBurst: 3, Tenant: 1, TenantBurst: 5},
		Now:       func() time.Time { return now },
	}})
	a1 := f.Client(t, client.Options{Token: "alpha.1"})
	a2 := f.Client(t, client.Options{Token: "alpha.2"})
	b := f.Client(t, client.Options{Token: "beta"})

	for range 3 {
		_, err := a1.List(ctx, "")
		require.NoError(t, err)
	}
	_, err := a1.List(ctx, "")
	require.True(t, client.IsLimited(err), "a token over its burst: %v", err)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, api.LimitTokenRate, ae.Limit)
	assert.Equal(t, time.Second, ae.RetryAfter)
	assert.Contains(t, ae.Message, "token tok-alpha.1 of tenant alpha is over its rate of 1 requests/s (burst 3, rate_per_token)")
	limitedReply(t, f, "GET", "/v1/services", "", "alpha.1")
	assert.Equal(t, 2.0, rejected(t, f, "alpha", api.LimitTokenRate))

	// The tenant's other token has its own bucket, but shares the
	// tenant's: 3 of its 5 are taken.
	for range 2 {
		_, err := a2.List(ctx, "")
		require.NoError(t, err)
	}
	_, err = a2.List(ctx, "")
	require.True(t, client.IsLimited(err), "the tenant over its burst: %v", err)
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, api.LimitTenantRate, ae.Limit)
	assert.Equal(t, 1.0, rejected(t, f, "alpha", api.LimitTenantRate))

	// Another tenant, and the local admin, are not slowed.
	for range 3 {
		_, err := b.List(ctx, "")
		require.NoError(t, err)
	}
	admin := f.Client(t, client.Options{})
	for range 20 {
		_, err := admin.List(ctx, "")
		require.NoError(t, err, "the local admin is never limited")
	}
	assert.Zero(t, rejected(t, f, "beta", api.LimitTokenRate)+rejected(t, f, "beta", api.LimitTenantRate))

	// A refused write writes nothing.
	from := f.Runtime.Store().Head() + 1
	_, err = a1.Deploy(ctx, sleeper("alpha", "web"))
	require.True(t, client.IsLimited(err), "%v", err)
	assert.Empty(t, writtenAbout(t, f, from, "web"))
}

// TestLimits_TenantPolicyOverrides: a tenant policy's quotas and rate
// replace the operator's for that tenant alone; bad ones are refused
// naming the field, nothing written.
func TestLimits_TenantPolicyOverrides(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_000_000, 0) // a still clock: nothing refills
	f := apitest.MustServe(t, apitest.Options{
		API:     api.Options{Authorize: tenantTokens, Now: func() time.Time { return now }},
		Runtime: solo.Options{Quotas: state.Limits{Services: 1, Sessions: 3}},
	})
	admin := f.Client(t, client.Options{})
	beta := f.Client(t, client.Options{Token: "beta"})
	gamma := f.Client(t, client.Options{Token: "gamma"})

	t.Run("bad input", func(t *testing.T) {
		head := f.Runtime.Store().Head()
		neg, rate := -1, 5.0
		for _, tc := range []struct {
			req   wire.TenantSetRequest
			field string
		}{
			{wire.TenantSetRequest{MaxServices: &neg}, state.QuotaServices},
			{wire.TenantSetRequest{MaxSessions: &neg}, state.QuotaSessions},
			{wire.TenantSetRequest{MaxTasks: &neg}, state.QuotaTasks},
			{wire.TenantSetRequest{Burst: &neg}, "burst"},
			{wire.TenantSetRequest{Rate: &rate}, "burst"},
		} {
			_, err := admin.SetTenant(ctx, "beta", tc.req)
			var ae *client.APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, http.StatusBadRequest, ae.Status, "%v", err)
			assert.Equal(t, tc.field, ae.Field, "%v", err)
		}
		status, _, body := do(t, f, "PUT", "/v1/tenants/beta", `{"rate":-2,"burst":1}`)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Contains(t, string(body), `"field":"rate"`)
		assert.Equal(t, head, f.Runtime.Store().Head(), "nothing written")
	})

	two, rate, burst := 2, 1.0, 2
	v, err := admin.SetTenant(ctx, "beta", wire.TenantSetRequest{MaxServices: &two, Rate: &rate, Burst: &burst})
	require.NoError(t, err)
	assert.Equal(t, state.Limits{Services: 2, Sessions: 3}, v.Limits, "its own services quota, the operator's sessions")
	assert.Equal(t, state.Limits{Services: 2}, v.Own)

	// beta: 2 services (its own quota), and 2 requests in a burst (its
	// own rate); gamma: the operator's 1 service, no rate.
	_, err = beta.Deploy(ctx, sleeper("beta", "a"))
	require.NoError(t, err)
	_, err = beta.Deploy(ctx, sleeper("beta", "b"))
	require.NoError(t, err)
	_, err = beta.List(ctx, "")
	require.True(t, client.IsLimited(err), "beta's own rate: %v", err)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, api.LimitTenantRate, ae.Limit)
	assert.Contains(t, ae.Message, "tenant beta is over its rate of 1 requests/s (burst 2, rate_per_tenant)")

	_, err = gamma.Deploy(ctx, sleeper("gamma", "a"))
	require.NoError(t, err)
	_, err = gamma.Deploy(ctx, sleeper("gamma", "b"))
	require.True(t, client.IsLimited(err), "gamma keeps the operator's quota: %v", err)
	assert.Contains(t, err.Error(), "tenant gamma is at its quota of 1 services")
	for range 5 {
		_, err := gamma.List(ctx, "")
		require.NoError(t, err, "gamma has no rate limit")
	}

	// beta at its own quota: raising it by policy lets the next one in.
	three := 3
	_, err = admin.SetTenant(ctx, "beta", wire.TenantSetRequest{MaxServices: &three, Rate: new(float64), Burst: new(int)})
	require.NoError(t, err)
	_, err = beta.Deploy(ctx, sleeper("beta", "c"))
	require.NoError(t, err, "a raised quota, and the rate back to the operator's (none)")
}
