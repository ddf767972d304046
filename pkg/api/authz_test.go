package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/pkg/api"
	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// clock is a settable clock for the runtime (token expiry) and the
// throttle.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// authFixture is a real runtime served on a unix socket (apitest's) and on
// TCP loopback, with token authorisation.
type authFixture struct {
	*apitest.Fixture
	Clock *clock
	Addr  string // TCP host:port
}

type authOptions struct {
	Authz   api.AuthorizerOptions
	DataDir string
	Clock   *clock
}

// mustServeAuth serves a runtime with an [api.Authorizer] on the unix
// socket and on a TCP port of 127.0.0.1.
func mustServeAuth(t testing.TB, o authOptions) *authFixture {
	t.Helper()
	if o.Clock == nil {
		o.Clock = newClock()
	}
	if o.Authz.Now == nil {
		o.Authz.Now = o.Clock.Now
	}
	// The authorizer needs the runtime, which MustServe opens: the server
	// reaches it through this pointer, set before any request is sent.
	var az atomic.Pointer[api.Authorizer]
	f := apitest.MustServe(t, apitest.Options{
		API: api.Options{Authorize: func(r *http.Request) (api.Principal, error) { return az.Load().Authorize(r) }},
		Runtime: solo.Options{
			DataDir: o.DataDir,
			Now:     o.Clock.Now,
		},
	})
	az.Store(api.NewAuthorizer(f.Runtime.Tokens(), o.Authz))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Server.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
	})
	return &authFixture{Fixture: f, Clock: o.Clock, Addr: l.Addr().String()}
}

// grant grants a token through the runtime, as the local admin.
func (f *authFixture) grant(t testing.TB, tenant, services string, ttl time.Duration, scopes ...capability.Scope) (capability.Token, string) {
	t.Helper()
	tok, pt, err := f.Runtime.Tokens().Grant(context.Background(), capability.GrantRequest{
		Tenant: tenant, Scopes: scopes, TTL: ttl, Services: services,
	})
	require.NoError(t, err)
	return tok, pt
}

// reply is one answer of the daemon.
type reply struct {
	status int
	header http.Header
	body   string
	err    wire.ErrorBody // decoded if the body is an ErrorBody
}

// tcpDo sends one request over TCP, from the source address src ("" for
// any), with token as the bearer token ("" for none).
func (f *authFixture) tcpDo(t testing.TB, src, token, method, path, body string) reply {
	t.Helper()
	d := &net.Dialer{}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer hc.CloseIdleConnections()
	return send(t, hc, "http://"+f.Addr+path, token, method, body)
}

// sockDo sends one request over the unix socket.
func (f *authFixture) sockDo(t testing.TB, token, method, path, body string) reply {
	t.Helper()
	return send(t, f.HTTP(), f.URL(path), token, method, body)
}

func send(t testing.TB, hc *http.Client, url, token, method, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.StatusCode >= 400 {
		json.Unmarshal(b, &r.err)
	}
	return r
}

// endpoint is one route of the matrix, for a target tenant.
type endpoint struct {
	name   string
	scope  capability.Scope
	method string
	path   func(tenant string) string
	body   func(tenant string) string
	// tenantInPath: the route names a tenant's service in its path, so
	// another tenant answers 404 before any scope check.
	tenantInPath bool
	// own and other: the status when the token has the scope, for a
	// target in its own tenant and in another one. ownOr, if set, is
	// also accepted for own: the route's effect was done by an earlier
	// scope's turn (a service already removed).
	own, other, ownOr int
	// check, if set, looks at an allowed reply.
	check func(t *testing.T, tenant string, own bool, r reply)
}

func matrixEndpoints(victims map[string]string) []endpoint {
	none := func(string) string { return "" }
	svc := func(suffix string) func(string) string {
		return func(tenant string) string { return "/v1/services/" + tenant + "/web" + suffix }
	}
	return []endpoint{
		{name: "ls", scope: capability.ScopeRead, method: "GET", path: func(t string) string { return "/v1/services?tenant=" + t }, body: none,
			own: 200, other: 200, check: func(t *testing.T, tenant string, own bool, r reply) {
				var views []state.ServiceView
				require.NoError(t, json.Unmarshal([]byte(r.body), &views))
				if !own {
					assert.Empty(t, views, "another tenant's services are invisible")
					return
				}
				require.NotEmpty(t, views)
				for _, v := range views {
					assert.Equal(t, tenant, v.Tenant)
				}
			}},
		{name: "status", scope: capability.ScopeRead, method: "GET", path: svc(""), body: none, tenantInPath: true, own: 200, other: 404},
		{name: "events", scope: capability.ScopeRead, method: "GET", path: func(string) string { return "/v1/events" }, body: none,
			own: 200, other: 200, check: func(t *testing.T, tenant string, own bool, r reply) {
				assert.NotContains(t, r.body, `"tenant":"other"`, "another tenant's events are left out")
				assert.Contains(t, r.body, `"tenant":"acme"`)
			}},
		{name: "logs", scope: capability.ScopeLogs, method: "GET", path: svc("/logs"), body: none, tenantInPath: true, own: 200, other: 404},
		{name: "why", scope: capability.ScopeRead, method: "GET", path: svc("/why"), body: none, tenantInPath: true, own: 200, other: 404},
		{name: "events of a service", scope: capability.ScopeRead, method: "GET",
			path: func(t string) string { return "/v1/events?tenant=" + t + "&service=web" }, body: none,
			own: 200, other: 200, check: func(t *testing.T, tenant string, own bool, r reply) {
				if !own {
					assert.Empty(t, r.body, "another tenant's service's events are left out")
					return
				}
				assert.Contains(t, r.body, `"subject":"web"`)
				assert.NotContains(t, r.body, `"tenant":"other"`)
			}},
		{name: "deploy", scope: capability.ScopeDeploy, method: "POST", path: func(string) string { return "/v1/services" },
			body: func(t string) string { return `{"tenant":"` + t + `","name":"web","command":["sleep","1000"]}` },
			own:  200, other: 403},
		{name: "apply", scope: capability.ScopeDeploy, method: "POST", path: func(string) string { return "/v1/apply" },
			body: func(t string) string {
				return `{"services":[{"tenant":"` + t + `","name":"web","command":["sleep","1000"]}],"dry_run":true}`
			},
			own: 200, other: 403},
		{name: "recover", scope: capability.ScopeDeploy, method: "POST", path: func(string) string { return "/v1/recover" },
			body: func(t string) string { return `{"tenant":"` + t + `","name":"web","dry_run":true}` }, own: 200, other: 404},
		{name: "kill", scope: capability.ScopeKill, method: "DELETE", path: svc(""), body: none, tenantInPath: true, own: 200, other: 404},
		{name: "start", scope: capability.ScopeDeploy, method: "POST", path: svc("/start"), body: none, tenantInPath: true, own: 200, other: 404},
		{name: "restart", scope: capability.ScopeDeploy, method: "POST", path: svc("/restart"), body: none, tenantInPath: true, own: 200, other: 404},
		{name: "signal", scope: capability.ScopeKill, method: "POST",
			path: func(t string) string { return "/v1/services/" + t + "/sig/signal" },
			body: func(string) string { return `{"signal":"WINCH"}` }, tenantInPath: true, own: 200, other: 404},
		{name: "stop", scope: capability.ScopeKill, method: "POST", path: svc("/stop"), body: none, tenantInPath: true, own: 200, other: 404},
		{name: "remove", scope: capability.ScopeKill, method: "POST",
			path: func(t string) string { return "/v1/services/" + t + "/gone/remove" },
			body: none, tenantInPath: true, own: 200, ownOr: 404, other: 404},
		// Whole-database routes need the local admin: a tenant's admin
		// token passes the scope check and is then refused.
		{name: "verify", scope: capability.ScopeAdmin, method: "POST", path: func(string) string { return "/v1/verify" },
			body: func(string) string { return `{}` }, own: 403, other: 403},
		{name: "db check", scope: capability.ScopeAdmin, method: "GET", path: func(string) string { return "/v1/db/check" }, body: none, own: 403, other: 403},
		{name: "db backup", scope: capability.ScopeAdmin, method: "GET", path: func(string) string { return "/v1/db/backup" }, body: none, own: 403, other: 403},
		{name: "token grant", scope: capability.ScopeAdmin, method: "POST", path: func(string) string { return "/v1/tokens" },
			body: func(t string) string { return `{"tenant":"` + t + `","scopes":["read"],"ttl":"1h"}` }, own: 201, other: 403},
		{name: "token ls", scope: capability.ScopeAdmin, method: "GET", path: func(t string) string { return "/v1/tokens?tenant=" + t }, body: none,
			own: 200, other: 200, check: func(t *testing.T, tenant string, own bool, r reply) {
				var views []wire.TokenView
				require.NoError(t, json.Unmarshal([]byte(r.body), &views))
				if !own {
					assert.Empty(t, views)
					return
				}
				require.NotEmpty(t, views)
				for _, v := range views {
					assert.Equal(t, tenant, v.Tenant)
				}
				assert.NotContains(t, r.body, capability.Prefix, "no plaintext in a listing")
			}},
		{name: "token revoke", scope: capability.ScopeAdmin, method: "DELETE", path: func(t string) string { return "/v1/tokens/" + victims[t] }, body: none,
			own: 200, other: 404},
		{name: "secret set", scope: capability.ScopeSecrets, method: "PUT", path: func(t string) string { return "/v1/secrets/" + t + "/db" },
			body: func(string) string { return `{"value":"bWF0cml4LXZhbHVl"}` }, tenantInPath: true, own: 200, other: 404,
			check: func(t *testing.T, tenant string, own bool, r reply) {
				assert.NotContains(t, r.body, "bWF0cml4LXZhbHVl", "no value in a reply")
			}},
		{name: "secret ls", scope: capability.ScopeSecrets, method: "GET", path: func(t string) string { return "/v1/secrets?tenant=" + t }, body: none,
			own: 200, other: 200, check: func(t *testing.T, tenant string, own bool, r reply) {
				var views []wire.SecretView
				require.NoError(t, json.Unmarshal([]byte(r.body), &views))
				if !own {
					assert.Empty(t, views, "another tenant's secrets are invisible")
					return
				}
				require.NotEmpty(t, views)
				for _, v := range views {
					assert.Equal(t, tenant, v.Tenant)
				}
				assert.NotContains(t, r.body, "bWF0cml4LXZhbHVl", "no value in a listing")
			}},
		{name: "secret rm", scope: capability.ScopeSecrets, method: "DELETE", path: func(t string) string { return "/v1/secrets/" + t + "/old" },
			body: none, tenantInPath: true, own: 200, ownOr: 404, other: 404},
	}
}

// TestAuthorizer_Matrix runs every scope against every endpoint, for a
// target in the token's own tenant and in another one, over TCP with real
// tokens against a real runtime.
func TestAuthorizer_Matrix(t *testing.T) {
	f := mustServeAuth(t, authOptions{})
	ctx := context.Background()
	for _, tenant := range []string{"acme", "other"} {
		// web is what the verbs act on; sig runs to be signalled (a sleep
		// ignores SIGWINCH); gone is stopped, to be removed.
		for _, name := range []string{"web", "sig", "gone"} {
			res, err := f.Runtime.Deploy(ctx, sleeper(tenant, name))
			require.NoError(t, err)
			_, err = f.Runtime.WaitStarted(ctx, tenant, name, res.Pos)
			require.NoError(t, err)
		}
		require.NoError(t, f.Runtime.Kill(ctx, tenant, "gone"))
		for _, name := range []string{"db", "old"} {
			_, err := f.Runtime.Secrets().Set(ctx, tenant, name, []byte("matrix-value"), false)
			require.NoError(t, err)
		}
	}
	victims := map[string]string{}
	for _, tenant := range []string{"acme", "other"} {
		tok, _ := f.grant(t, tenant, "", time.Hour, capability.ScopeRead)
		victims[tenant] = tok.ID
	}

	for _, scope := range capability.Scopes() {
		_, pt := f.grant(t, "acme", "", time.Hour, scope)
		for _, ep := range matrixEndpoints(victims) {
			for _, target := range []string{"acme", "other"} {
				own := target == "acme"
				t.Run(fmt.Sprintf("%s/%s/%s", scope, ep.name, target), func(t *testing.T) {
					r := f.tcpDo(t, "", pt, ep.method, ep.path(target), ep.body(target))
					allowed := scope == ep.scope || scope == capability.ScopeAdmin
					switch {
					case !own && ep.tenantInPath:
						assert.Equal(t, http.StatusNotFound, r.status, r.body)
						assert.Equal(t, wire.CodeNotFound, r.err.Code)
					case !allowed:
						assert.Equal(t, http.StatusForbidden, r.status, r.body)
						assert.Equal(t, wire.CodeDenied, r.err.Code)
						assert.Contains(t, r.err.Error, fmt.Sprintf("lacks scope %q", ep.scope), "the missing scope is named")
					default:
						want := ep.own
						if !own {
							want = ep.other
						}
						if own && ep.ownOr != 0 && r.status == ep.ownOr {
							want = ep.ownOr
						}
						require.Equal(t, want, r.status, r.body)
						assert.NotContains(t, r.err.Error, "lacks scope")
						if ep.check != nil && r.status < 300 {
							ep.check(t, target, own, r)
						}
					}
				})
			}
		}
	}

	// Nothing done with acme's tokens reached the other tenant.
	v, err := f.Runtime.Status("other", "web")
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, v.State, "other/web was never killed")
	_, err = f.Runtime.Status("other", "gone")
	require.NoError(t, err, "other/gone was never removed")
	toks := f.Runtime.Tokens().List("other")
	require.Len(t, toks, 1, "no token was granted in the other tenant")
	assert.False(t, toks[0].Revoked(), "nor revoked there")
	secrets, err := f.Runtime.Secrets().List("other")
	require.NoError(t, err)
	require.Len(t, secrets, 2, "no secret of the other tenant was removed")
	for _, m := range secrets {
		assert.Equal(t, uint64(1), m.Version, "nor set")
	}
}

// TestAuthorizer_Listeners checks which listener needs what: TCP always a
// token; the socket none (the local admin) unless RequireToken.
func TestAuthorizer_Listeners(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		f := mustServeAuth(t, authOptions{})
		r := f.tcpDo(t, "", "", "GET", "/v1/services", "")
		assert.Equal(t, http.StatusUnauthorized, r.status)
		assert.Equal(t, wire.CodeUnauthorized, r.err.Code)
		assert.Contains(t, r.err.Error, "Authorization: Bearer")
		assert.Equal(t, `Bearer realm="solo"`, r.header.Get("WWW-Authenticate"))

		r = f.sockDo(t, "", "GET", "/v1/db/check", "")
		assert.Equal(t, http.StatusOK, r.status, "the socket's owner is the admin: %s", r.body)

		// A token sent on the socket is honoured: the caller asked to act as it.
		_, pt := f.grant(t, "acme", "", time.Hour, capability.ScopeRead)
		r = f.sockDo(t, pt, "GET", "/v1/db/check", "")
		assert.Equal(t, http.StatusForbidden, r.status, r.body)

		// Health, readiness and metrics are never authorised.
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			assert.Equal(t, http.StatusOK, f.tcpDo(t, "", "", "GET", p, "").status, p)
		}
	})
	t.Run("require token", func(t *testing.T) {
		f := mustServeAuth(t, authOptions{Authz: api.AuthorizerOptions{RequireToken: true}})
		r := f.sockDo(t, "", "GET", "/v1/services", "")
		assert.Equal(t, http.StatusUnauthorized, r.status)
		_, pt := f.grant(t, "acme", "", time.Hour, capability.ScopeRead)
		r = f.sockDo(t, pt, "GET", "/v1/services", "")
		assert.Equal(t, http.StatusOK, r.status, r.body)
	})
}

// TestAuthorizer_BadTokens sends malformed, truncated, mistyped, unknown,
// expired and revoked tokens: each is refused with 401 and a message that
// says what is wrong without echoing the token, is counted, and writes
// nothing.
func TestAuthorizer_BadTokens(t *testing.T) {
	f := mustServeAuth(t, authOptions{Authz: api.AuthorizerOptions{MaxFailures: 1000}})
	good, pt := f.grant(t, "acme", "", time.Hour, capability.ScopeAdmin)
	revoked, revokedPT := f.grant(t, "acme", "", time.Hour, capability.ScopeAdmin)
	_, err := f.Runtime.Tokens().Revoke(context.Background(), revoked.ID)
	require.NoError(t, err)
	_, expiredPT := f.grant(t, "acme", "", time.Minute, capability.ScopeAdmin)
	// The unknown token is well-formed, with a right checksum: take a
	// granted one's text, then sweep it away.
	gone, unknownPT := f.grant(t, "acme", "", time.Second, capability.ScopeAdmin)
	_ = gone

	// Mistype one character of the random part: the checksum catches it.
	b := []byte(pt)
	if b[10] == 'a' {
		b[10] = 'b'
	} else {
		b[10] = 'a'
	}
	mistyped := string(b)

	f.Clock.Add(2 * time.Second)
	_, err = f.Runtime.Tokens().Sweep(context.Background())
	require.NoError(t, err)
	f.Clock.Add(time.Minute) // expiredPT is past its expiry now; pt is not

	cases := []struct {
		name, header string
		mention      string
	}{
		{"no header", "", "no token"},
		{"basic auth", "Basic dXNlcjpwYXNz", "Bearer"},
		{"empty bearer", "Bearer ", "Bearer"},
		{"malformed", "Bearer not-a-token", "malformed"},
		{"wrong prefix", "Bearer ghp_" + pt[len(capability.Prefix):], "malformed"},
		{"truncated", "Bearer " + pt[:len(pt)-3], "malformed"},
		{"one character more", "Bearer " + pt + "x", "malformed"},
		{"wrong checksum", "Bearer " + pt[:len(pt)-1] + flip(pt[len(pt)-1]), "checksum"},
		{"mistyped", "Bearer " + mistyped, "checksum"},
		{"unknown", "Bearer " + unknownPT, "unknown token"},
		{"expired", "Bearer " + expiredPT, "expired"},
		{"revoked", "Bearer " + revokedPT, "revoked"},
	}
	head := f.Runtime.Store().Head()
	failures := metric(t, f.Fixture, "solo_auth_failures_total")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, req := range []struct{ method, path, body string }{
				{"POST", "/v1/services", `{"tenant":"acme","name":"intruder","command":["sleep","1000"]}`},
				{"POST", "/v1/tokens", `{"tenant":"acme","scopes":["admin"]}`},
				{"DELETE", "/v1/tokens/" + good.ID, ""},
			} {
				hreq, err := http.NewRequest(req.method, "http://"+f.Addr+req.path, strings.NewReader(req.body))
				require.NoError(t, err)
				if c.header != "" {
					hreq.Header.Set("Authorization", c.header)
				}
				resp, err := http.DefaultClient.Do(hreq)
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", body)
				var eb wire.ErrorBody
				require.NoError(t, json.Unmarshal(body, &eb))
				assert.Equal(t, wire.CodeUnauthorized, eb.Code)
				assert.Contains(t, eb.Error, c.mention)
				if tok := strings.TrimPrefix(c.header, "Bearer "); len(tok) > 8 {
					assert.NotContains(t, string(body), tok, "the token is not echoed")
					assert.NotContains(t, string(body), tok[len(tok)-10:], "not even in part")
				}
			}
		})
	}
	assert.Equal(t, head, f.Runtime.Store().Head(), "refused requests write nothing")
	assert.Equal(t, failures+float64(3*len(cases)), metric(t, f.Fixture, "solo_auth_failures_total"), "every refusal is counted")
	_, err = f.Runtime.Status("acme", "intruder")
	assert.ErrorIs(t, err, solo.ErrNotFound)
	tok, err := f.Runtime.Tokens().Authenticate(pt)
	require.NoError(t, err, "the good token was not revoked")
	assert.False(t, tok.Revoked())
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestAuthorizer_ExpiryBoundary: valid one nanosecond before its expiry,
// refused at it, over TCP, with the runtime's clock.
func TestAuthorizer_ExpiryBoundary(t *testing.T) {
	f := mustServeAuth(t, authOptions{})
	tok, pt := f.grant(t, "acme", "", time.Minute, capability.ScopeRead)

	f.Clock.Set(tok.ExpiresAt.Add(-time.Nanosecond))
	r := f.tcpDo(t, "", pt, "GET", "/v1/services", "")
	assert.Equal(t, http.StatusOK, r.status, r.body)

	f.Clock.Set(tok.ExpiresAt)
	r = f.tcpDo(t, "", pt, "GET", "/v1/services", "")
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, r.err.Error, "expired")
	assert.Contains(t, r.err.Error, tok.ID, "the id, which is no secret, tells which token")
}

// TestAuthorizer_RevokeRestart revokes a token over the API, restarts the
// runtime on the same data dir, and finds the token still refused.
func TestAuthorizer_RevokeRestart(t *testing.T) {
	dir := t.TempDir()
	f := mustServeAuth(t, authOptions{DataDir: dir})
	_, admin := f.grant(t, "acme", "", time.Hour, capability.ScopeAdmin)
	c, err := client.New(client.Options{Addr: f.Addr, Token: admin})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()

	g, err := c.GrantToken(ctx, wire.TokenRequest{Scopes: []string{"read"}, TTL: state.Duration(time.Hour)})
	require.NoError(t, err)
	assert.Equal(t, "acme", g.Tenant, "a token grants in its own tenant by default")
	require.NoError(t, capability.Validate(g.Token))
	reader, err := client.New(client.Options{Addr: f.Addr, Token: g.Token})
	require.NoError(t, err)
	defer reader.Close()
	_, err = reader.List(ctx, "")
	require.NoError(t, err)

	v, err := c.RevokeToken(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, wire.TokenRevoked, v.State)
	_, err = reader.List(ctx, "")
	require.True(t, client.IsDenied(err), "revocation takes effect at once: %v", err)

	// Restart: stop serving, close the runtime, open it again.
	require.NoError(t, f.Stop())
	require.NoError(t, f.Runtime.Close(ctx))
	f2 := mustServeAuth(t, authOptions{DataDir: dir})
	r := f2.tcpDo(t, "", g.Token, "GET", "/v1/services", "")
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, r.err.Error, "revoked")
	r = f2.tcpDo(t, "", admin, "GET", "/v1/tokens", "")
	assert.Equal(t, http.StatusOK, r.status, "the unrevoked token survives the restart: %s", r.body)
	assertNoPlaintext(t, f2.Fixture, dir, g.Token, admin)
}

// TestAuthorizer_Throttle: after MaxFailures failures a source gets 429
// with Retry-After, even with a good token, until it has earned a failure
// back; another source is not affected.
func TestAuthorizer_Throttle(t *testing.T) {
	f := mustServeAuth(t, authOptions{Authz: api.AuthorizerOptions{MaxFailures: 3, FailureWindow: 3 * time.Minute}})
	_, pt := f.grant(t, "acme", "", time.Hour, capability.ScopeRead)
	bad := "solo_" + strings.Repeat("0", capability.PlaintextLen-len(capability.Prefix))

	for i := range 3 {
		r := f.tcpDo(t, "127.0.0.1", bad, "GET", "/v1/services", "")
		require.Equal(t, http.StatusUnauthorized, r.status, "failure %d", i+1)
	}
	before := metric(t, f.Fixture, "solo_auth_failures_total")
	for _, token := range []string{bad, pt} {
		r := f.tcpDo(t, "127.0.0.1", token, "GET", "/v1/services", "")
		require.Equal(t, http.StatusTooManyRequests, r.status, r.body)
		assert.Equal(t, wire.CodeThrottled, r.err.Code)
		assert.Equal(t, "60", r.header.Get("Retry-After"))
		assert.Contains(t, r.err.Error, "retry in 1m0s")
	}
	assert.Equal(t, before+2, metric(t, f.Fixture, "solo_auth_failures_total"), "throttled requests are counted")

	r := f.tcpDo(t, "127.0.0.2", pt, "GET", "/v1/services", "")
	assert.Equal(t, http.StatusOK, r.status, "another source is not throttled: %s", r.body)
	assert.Equal(t, http.StatusOK, f.sockDo(t, "", "GET", "/v1/services", "").status, "nor is the socket's admin")

	f.Clock.Add(time.Minute - time.Second)
	r = f.tcpDo(t, "127.0.0.1", pt, "GET", "/v1/services", "")
	assert.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "1", r.header.Get("Retry-After"))

	f.Clock.Add(time.Second)
	r = f.tcpDo(t, "127.0.0.1", pt, "GET", "/v1/services", "")
	assert.Equal(t, http.StatusOK, r.status, "one failure earned back: %s", r.body)
	r = f.tcpDo(t, "127.0.0.1", bad, "GET", "/v1/services", "")
	assert.Equal(t, http.StatusUnauthorized, r.status, "and spent")
	r = f.tcpDo(t, "127.0.0.1", pt, "GET", "/v1/services", "")
	assert.Equal(t, http.StatusTooManyRequests, r.status)
}

// TestAuthorizer_ServicePattern: a token bound to "web-*" acts on matching
// services only; others answer 404, deploys of others 403, and routes
// that span the tenant refuse it.
func TestAuthorizer_ServicePattern(t *testing.T) {
	f := mustServeAuth(t, authOptions{})
	ctx := context.Background()
	from := f.Runtime.Store().Head() + 1
	for _, name := range []string{"web-1", "api"} {
		_, err := f.Runtime.Deploy(ctx, sleeper("acme", name))
		require.NoError(t, err)
	}
	// A deploy returns once its intent is durable; wait for api's start,
	// so that "not touched" below compares a running instance with itself.
	f.WaitEvent(t, from, "service_started", "acme", "api")
	before, err := f.Runtime.Status("acme", "api")
	require.NoError(t, err)
	_, pt := f.grant(t, "acme", "web-*", time.Hour, capability.ScopeRead, capability.ScopeDeploy, capability.ScopeKill)

	cases := []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/v1/services/acme/web-1", "", 200},
		{"GET", "/v1/services/acme/api", "", 404},
		{"GET", "/v1/services/acme/nothing", "", 404},
		{"DELETE", "/v1/services/acme/api", "", 404},
		{"POST", "/v1/services", `{"tenant":"acme","name":"api","command":["sleep","1000"]}`, 403},
		{"POST", "/v1/services", `{"tenant":"acme","name":"web-2","command":["sleep","1000"]}`, 200},
		{"POST", "/v1/services", `{"tenant":"acme","name":"web-3","command":`, 400}, // the handler's own refusal
		{"GET", "/v1/services", "", 403},
		{"GET", "/v1/events", "", 403},
		{"POST", "/v1/apply", `{"services":[]}`, 403},
		{"DELETE", "/v1/services/acme/web-1", "", 200},
	}
	for _, c := range cases {
		r := f.tcpDo(t, "", pt, c.method, c.path, c.body)
		assert.Equal(t, c.status, r.status, "%s %s: %s", c.method, c.path, r.body)
	}
	v, err := f.Runtime.Status("acme", "api")
	require.NoError(t, err)
	assert.Equal(t, state.StateRunning, v.State, "acme/api was not touched")
	assert.Equal(t, before.PID, v.PID, "acme/api was restarted")
}

// TestAuthorizer_GrantLimits: a token grants only in its own tenant, and
// never a token that outlives it.
func TestAuthorizer_GrantLimits(t *testing.T) {
	f := mustServeAuth(t, authOptions{})
	tok, admin := f.grant(t, "acme", "", time.Hour, capability.ScopeAdmin)

	r := f.tcpDo(t, "", admin, "POST", "/v1/tokens", `{"scopes":["read"],"ttl":"2h"}`)
	assert.Equal(t, http.StatusBadRequest, r.status, r.body)
	assert.Equal(t, "ttl", r.err.Field)

	r = f.tcpDo(t, "", admin, "POST", "/v1/tokens", `{"scopes":["read"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.body)
	var g wire.TokenGrant
	require.NoError(t, json.Unmarshal([]byte(r.body), &g))
	assert.False(t, g.ExpiresAt.After(tok.ExpiresAt), "the default ttl is cut to the granter's life")
	assert.Equal(t, tok.ID, g.Actor, "the granter is recorded")

	r = f.tcpDo(t, "", admin, "POST", "/v1/tokens", `{"scopes":["root"]}`)
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "scopes", r.err.Field)

	r = f.tcpDo(t, "", admin, "DELETE", "/v1/tokens/"+admin, "")
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.NotContains(t, r.body, admin, "a plaintext given as an id is not echoed")
}

// assertNoPlaintext scans the database file and the event log (read over
// the API) for each plaintext.
func assertNoPlaintext(t *testing.T, f *apitest.Fixture, dir string, plaintexts ...string) {
	t.Helper()
	db, err := os.ReadFile(filepath.Join(dir, "solo.db"))
	require.NoError(t, err)
	require.NotEmpty(t, db)
	var events strings.Builder
	for env, err := range f.Runtime.Store().Read(1, 0) {
		require.NoError(t, err)
		b, _ := json.Marshal(env)
		events.Write(b)
	}
	require.Contains(t, events.String(), string(state.TypeTokenGranted))
	for _, pt := range plaintexts {
		assert.NotContains(t, string(db), pt, "the database file holds a plaintext")
		assert.NotContains(t, string(db), pt[len(capability.Prefix):])
		assert.NotContains(t, events.String(), pt, "the event log holds a plaintext")
	}
}

// BenchmarkAuthorize compares, in one run, a status request answered by the
// whole handler (routing, authorisation, the runtime's read, JSON) without
// authorisation (the local admin) and with a bearer token, and the
// authorisation step alone. Authentication reads memory only: there is no
// cache to warm, the token store is the cache.
func BenchmarkAuthorize(b *testing.B) {
	f := apitest.MustServe(b, apitest.Options{})
	if _, err := f.Runtime.Deploy(context.Background(), sleeper("acme", "web")); err != nil {
		b.Fatal(err)
	}
	// A populated store, not a one-token map.
	for i := range 1000 {
		if _, _, err := f.Runtime.Tokens().Grant(context.Background(), capability.GrantRequest{
			Tenant: fmt.Sprintf("t%d", i%10), Scopes: []capability.Scope{capability.ScopeRead},
		}); err != nil {
			b.Fatal(err)
		}
	}
	_, pt, err := f.Runtime.Tokens().Grant(context.Background(), capability.GrantRequest{
		Tenant: "acme", Scopes: []capability.Scope{capability.ScopeRead},
	})
	if err != nil {
		b.Fatal(err)
	}
	az := api.NewAuthorizer(f.Runtime.Tokens(), api.AuthorizerOptions{})
	open := api.New(f.Runtime, api.Options{}).Handler()
	authed := api.New(f.Runtime, api.Options{Authorize: az.Authorize}).Handler()

	serve := func(b *testing.B, h http.Handler, token string) {
		req := httptestRequest("GET", "/v1/services/acme/web", token)
		b.ReportAllocs()
		for b.Loop() {
			w := &discardWriter{header: http.Header{}}
			h.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		}
	}
	b.Run("handler/unauthenticated", func(b *testing.B) { serve(b, open, "") })
	b.Run("handler/token", func(b *testing.B) { serve(b, authed, pt) })
	b.Run("authorize-only", func(b *testing.B) {
		req := httptestRequest("GET", "/v1/services/acme/web", pt)
		req.Pattern = "GET /v1/services/{tenant}/{name}"
		req.SetPathValue("tenant", "acme")
		req.SetPathValue("name", "web")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := az.Authorize(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func httptestRequest(method, path, token string) *http.Request {
	req, err := http.NewRequest(method, "http://solo"+path, nil)
	if err != nil {
		panic(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// discardWriter is a ResponseWriter that keeps the status only.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}

// blipTokens is a token store that, while blip is set, cannot tell whether
// its copy is current, as an etcd store during a cluster blip: it refuses
// every token with [capability.ErrNotSynced].
type blipTokens struct {
	capability.Tokens
	blip atomic.Bool
}

func (b *blipTokens) Authenticate(plaintext string) (capability.Token, error) {
	if b.blip.Load() {
		return capability.Token{}, capability.ErrNotSynced
	}
	return b.Tokens.Authenticate(plaintext)
}

// TestAuthorizer_StoreFaultNotThrottled: a token store that cannot answer
// (ErrNotSynced) gets 503, and however many requests meet it, the source
// is not throttled nor the failures counted: only refused credentials
// are. Once the store answers again, the same source's good token works,
// and bad tokens still are throttled.
func TestAuthorizer_StoreFaultNotThrottled(t *testing.T) {
	var store atomic.Pointer[blipTokens]
	var az atomic.Pointer[api.Authorizer]
	f := apitest.MustServe(t, apitest.Options{
		API: api.Options{Authorize: func(r *http.Request) (api.Principal, error) { return az.Load().Authorize(r) }},
		Runtime: solo.Options{Tokens: func(ctx context.Context, o capability.Options) (capability.Tokens, error) {
			db, err := bbolt.Open(filepath.Join(t.TempDir(), "tokens.db"), 0o600, &bbolt.Options{Timeout: time.Second})
			if err != nil {
				return nil, err
			}
			t.Cleanup(func() { db.Close() })
			st, err := capability.Open(ctx, db, &o)
			if err != nil {
				return nil, err
			}
			b := &blipTokens{Tokens: st}
			store.Store(b)
			return b, nil
		}},
	})
	const maxFailures = 3
	az.Store(api.NewAuthorizer(f.Runtime.Tokens(), api.AuthorizerOptions{MaxFailures: maxFailures, FailureWindow: time.Hour}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Server.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
	})
	af := &authFixture{Fixture: f, Addr: l.Addr().String()}
	_, pt := af.grant(t, "acme", "", time.Hour, capability.ScopeRead)
	bad := "solo_" + strings.Repeat("0", capability.PlaintextLen-len(capability.Prefix))

	store.Load().blip.Store(true)
	before := metric(t, f, "solo_auth_failures_total")
	for i := range 3 * maxFailures {
		r := af.tcpDo(t, "127.0.0.1", pt, "GET", "/v1/services", "")
		require.Equal(t, http.StatusServiceUnavailable, r.status, "request %d during the blip: %s", i+1, r.body)
		assert.Equal(t, wire.CodeUnavailable, r.err.Code)
		assert.Contains(t, r.err.Error, "not in sync")
		assert.Empty(t, r.header.Get("Retry-After"), "a 503 of the store is no throttle")
		assert.NotContains(t, r.body, pt)
	}
	assert.Equal(t, before, metric(t, f, "solo_auth_failures_total"), "the store's faults are no auth failures")

	store.Load().blip.Store(false)
	r := af.tcpDo(t, "127.0.0.1", pt, "GET", "/v1/services", "")
	require.Equal(t, http.StatusOK, r.status, "after the blip the good token works from the same source: %s", r.body)
	for i := range maxFailures {
		r := af.tcpDo(t, "127.0.0.1", bad, "GET", "/v1/services", "")
		require.Equal(t, http.StatusUnauthorized, r.status, "refusal %d", i+1)
	}
	r = af.tcpDo(t, "127.0.0.1", pt, "GET", "/v1/services", "")
	assert.Equal(t, http.StatusTooManyRequests, r.status, "refused credentials still count: %s", r.body)
	assert.Equal(t, before+maxFailures+1, metric(t, f, "solo_auth_failures_total"))
}
