package webui_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/pkg/api"
	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/webui"
)

// fixture is a served runtime whose socket needs a token, as TCP does, and
// tokens of two tenants.
type fixture struct {
	*apitest.Fixture
	h        http.Handler
	acme     string // read, logs, deploy, kill in acme
	readOnly string // read, logs in acme
	other    string // read, logs, deploy, kill in other
}

func newFixture(t *testing.T) *fixture {
	var authz *api.Authorizer
	f := apitest.MustServe(t, apitest.Options{API: api.Options{
		Authorize: func(r *http.Request) (api.Principal, error) { return authz.Authorize(r) },
	}})
	authz = api.NewAuthorizer(f.Runtime.Tokens(), api.AuthorizerOptions{RequireToken: true, MaxFailures: 1000})
	grant := func(tenant string, scopes ...capability.Scope) string {
		_, plain, err := f.Runtime.Tokens().Grant(context.Background(), capability.GrantRequest{Tenant: tenant, Scopes: scopes})
		require.NoError(t, err)
		return plain
	}
	all := []capability.Scope{capability.ScopeRead, capability.ScopeLogs, capability.ScopeDeploy, capability.ScopeKill}
	fx := &fixture{Fixture: f, h: f.Server.Handler(),
		acme: grant("acme", all...), readOnly: grant("acme", capability.ScopeRead, capability.ScopeLogs), other: grant("other", all...)}
	for _, spec := range []state.Spec{
		{Tenant: "acme", Name: "web", Command: []string{"sh", "-c", `echo '<script>alert(1)</script>'; exec sleep 1000`}},
		{Tenant: "other", Name: "secret", Command: []string{"sleep", "1000"}},
	} {
		res, err := f.Runtime.Deploy(context.Background(), spec)
		require.NoError(t, err)
		f.WaitEvent(t, res.Pos, string(state.TypeServiceStarted), spec.Tenant, spec.Name)
	}
	return fx
}

// do serves one request as a browser of the page's own origin would send
// it, with tok as the login cookie ("" for none).
func (fx *fixture) do(method, target, tok string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.Host = "solo.test"
	for k, vs := range header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	if tok != "" {
		r.AddCookie(&http.Cookie{Name: webui.CookieName, Value: tok})
	}
	w := httptest.NewRecorder()
	fx.h.ServeHTTP(w, r)
	return w
}

var csrfRE = regexp.MustCompile(`data-csrf="([^"]+)"`)

// csrf reads the CSRF token of tok's session from a page.
func (fx *fixture) csrf(t *testing.T, tok string) string {
	t.Helper()
	w := fx.do("GET", "/ui/", tok, nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	m := csrfRE.FindStringSubmatch(w.Body.String())
	require.NotNil(t, m)
	return m[1]
}

func TestUI_Auth(t *testing.T) {
	fx := newFixture(t)

	t.Run("no credential: the login form", func(t *testing.T) {
		w := fx.do("GET", "/ui/", "", nil)
		assert.Equal(t, http.StatusUnauthorized, w.Code)
		assert.Contains(t, w.Body.String(), `<form method="post" action="/ui/login">`)
		assert.NotContains(t, w.Body.String(), "acme")
	})

	login := func(tok string, header http.Header) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/ui/login", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		r.Host = "solo.test"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, vs := range header {
			for _, v := range vs {
				r.Header.Add(k, v)
			}
		}
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		return w
	}

	t.Run("a bad token is refused without showing it", func(t *testing.T) {
		bad := fx.acme[:len(fx.acme)-3] + "xyz"
		w := login(bad, nil)
		assert.Equal(t, http.StatusUnauthorized, w.Code)
		assert.Contains(t, w.Body.String(), "token:")
		assert.NotContains(t, w.Body.String(), bad)
		assert.Empty(t, w.Result().Cookies())
	})

	t.Run("a good token sets an HttpOnly, SameSite=Strict cookie", func(t *testing.T) {
		w := login(fx.acme, http.Header{"Origin": {"http://solo.test"}, "Sec-Fetch-Site": {"same-origin"}})
		require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
		cs := w.Result().Cookies()
		require.Len(t, cs, 1)
		c := cs[0]
		assert.Equal(t, webui.CookieName, c.Name)
		assert.True(t, c.HttpOnly)
		assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
		assert.False(t, c.Secure, "plain HTTP: a Secure cookie would never come back")
		assert.Equal(t, "/ui", c.Path)
		assert.NotContains(t, w.Header().Get("Location"), fx.acme)
	})

	t.Run("a login from another site is refused", func(t *testing.T) {
		w := login(fx.acme, http.Header{"Origin": {"http://evil.test"}})
		assert.Equal(t, http.StatusForbidden, w.Code)
		assert.Empty(t, w.Result().Cookies())
	})

	t.Run("with the cookie, pages never hold the token", func(t *testing.T) {
		for _, p := range []string{"/ui/", "/ui/services/acme/web", "/ui/events", "/ui/row/acme/web", "/ui/services/acme/web/live"} {
			w := fx.do("GET", p, fx.acme, nil)
			assert.Equal(t, http.StatusOK, w.Code, p)
			assert.NotContains(t, w.Body.String(), fx.acme, p)
		}
	})

	t.Run("the bearer header works too", func(t *testing.T) {
		w := fx.do("GET", "/ui/", "", http.Header{"Authorization": {"Bearer " + fx.acme}})
		assert.Equal(t, http.StatusOK, w.Code)
	})
}

func TestUI_CSRF(t *testing.T) {
	fx := newFixture(t)
	restart := "/ui/api/services/acme/web/restart"
	token := fx.csrf(t, fx.acme)
	before := fx.Runtime.Store().Head()

	cases := []struct {
		name   string
		tok    string
		header http.Header
		want   int
	}{
		{"no CSRF token", fx.acme, http.Header{"Sec-Fetch-Site": {"same-origin"}}, http.StatusForbidden},
		{"another session's CSRF token", fx.acme, http.Header{webui.CSRFHeader: {fx.csrf(t, fx.readOnly)}}, http.StatusForbidden},
		{"from another site", fx.acme, http.Header{webui.CSRFHeader: {token}, "Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"another origin", fx.acme, http.Header{webui.CSRFHeader: {token}, "Origin": {"http://evil.test"}}, http.StatusForbidden},
		{"a null origin", fx.acme, http.Header{webui.CSRFHeader: {token}, "Origin": {"null"}}, http.StatusForbidden},
		{"read-only token", fx.readOnly, http.Header{webui.CSRFHeader: {fx.csrf(t, fx.readOnly)}}, http.StatusForbidden},
		{"no credential", "", http.Header{webui.CSRFHeader: {token}}, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := fx.do("POST", restart, c.tok, c.header)
			assert.Equal(t, c.want, w.Code, w.Body.String())
		})
	}
	assert.Equal(t, before, fx.Runtime.Store().Head(), "a refused write wrote")

	t.Run("the session's token, same origin: restarted", func(t *testing.T) {
		w := fx.do("POST", restart, fx.acme, http.Header{webui.CSRFHeader: {token}, "Origin": {"http://solo.test"}, "Sec-Fetch-Site": {"same-origin"}})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		assert.Contains(t, w.Body.String(), `"started":true`)
		fx.WaitEvent(t, before+1, string(state.TypeServiceRestartRequested), "acme", "web")
	})

	t.Run("read-only: no button", func(t *testing.T) {
		w := fx.do("GET", "/ui/services/acme/web", fx.readOnly, nil)
		require.Equal(t, http.StatusOK, w.Code)
		assert.NotContains(t, w.Body.String(), "data-verb")
		assert.Contains(t, w.Body.String(), "read-only")
		w = fx.do("GET", "/ui/services/acme/web", fx.acme, nil)
		assert.Contains(t, w.Body.String(), `data-verb="restart"`)
	})
}

func TestUI_TenantFiltering(t *testing.T) {
	fx := newFixture(t)

	w := fx.do("GET", "/ui/", fx.acme, nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), `data-key="acme/web"`)
	assert.NotContains(t, w.Body.String(), "other/secret", "another tenant's service is not listed")
	for _, p := range []string{"/ui/services/other/secret", "/ui/row/other/secret", "/ui/services/other/secret/live", "/ui/api/services/other/secret", "/ui/api/services/other/secret/logs"} {
		w := fx.do("GET", p, fx.acme, nil)
		assert.Equal(t, http.StatusNotFound, w.Code, p)
		assert.NotContains(t, w.Body.String(), "sleep", p)
	}
	token := fx.csrf(t, fx.acme)
	w = fx.do("POST", "/ui/api/services/other/secret/stop", fx.acme, http.Header{webui.CSRFHeader: {token}})
	assert.Equal(t, http.StatusNotFound, w.Code)

	t.Run("the live stream carries only the caller's tenant", func(t *testing.T) {
		srv := httptest.NewServer(fx.h)
		defer srv.Close()
		from := fx.Runtime.Store().Head() + 1
		req, _ := http.NewRequest("GET", srv.URL+"/ui/api/events?from="+strconvU(from), nil)
		req.AddCookie(&http.Cookie{Name: webui.CookieName, Value: fx.acme})
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
		// Another tenant's event first, then the caller's: the stream must
		// reach the second without showing the first.
		_, err = fx.Runtime.Deploy(context.Background(), state.Spec{Tenant: "other", Name: "hidden", Command: []string{"sleep", "1000"}})
		require.NoError(t, err)
		_, err = fx.Runtime.Deploy(context.Background(), state.Spec{Tenant: "acme", Name: "marker", Command: []string{"sleep", "1000"}})
		require.NoError(t, err)
		sc := bufio.NewScanner(res.Body)
		var seen []string
		for sc.Scan() {
			line := sc.Text()
			seen = append(seen, line)
			if strings.Contains(line, `"subject":"marker"`) {
				break
			}
		}
		all := strings.Join(seen, "\n")
		assert.Contains(t, all, `"subject":"marker"`)
		assert.NotContains(t, all, "hidden")
		assert.NotContains(t, all, `"tenant":"other"`)
	})
}

func TestUI_Escaping(t *testing.T) {
	fx := newFixture(t)
	w := fx.do("GET", "/ui/services/acme/web", fx.acme, nil)
	require.Equal(t, http.StatusOK, w.Code)
	body := w.Body.String()
	assert.NotContains(t, body, "<script>alert(1)</script>", "the command is shown unescaped")
	assert.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.Contains(t, w.Header().Get("Content-Security-Policy"), "script-src 'self'")

	// The log is sent as text the browser must not sniff as HTML.
	w = fx.do("GET", "/ui/api/services/acme/web/logs?tail=10", fx.acme, nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "text/plain; charset=utf-8", w.Header().Get("Content-Type"))
	assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))

	// An error page shows what it was asked, escaped.
	w = fx.do("GET", "/ui/<script>x", fx.acme, nil)
	assert.Equal(t, http.StatusNotFound, w.Code)
	got, _ := io.ReadAll(w.Body)
	assert.NotContains(t, string(got), "<script>x")
}

func strconvU(n uint64) string { return strconv.FormatUint(n, 10) }

func TestUI_BadNames(t *testing.T) {
	fx := newFixture(t)
	token := fx.csrf(t, fx.acme)
	before := fx.Runtime.Store().Head()
	for _, c := range []struct{ method, path string }{
		{"GET", "/ui/api/services/acme%2F..%2F..%2Fv1%2Ftokens/x"},
		{"GET", "/ui/api/services/acme/web%2Fwhy"},
		{"GET", "/ui/row/acme/b%20d"},
		{"GET", "/ui/services/acme/web%2F..%2Fx"},
		{"POST", "/ui/api/services/acme/web%2Fstop/restart"},
	} {
		w := fx.do(c.method, c.path, fx.acme, http.Header{webui.CSRFHeader: {token}})
		assert.Equal(t, http.StatusBadRequest, w.Code, "%s %s: %s", c.method, c.path, w.Body.String())
		assert.Regexp(t, `name|not canonical`, w.Body.String(), c.path)
	}
	assert.Equal(t, before, fx.Runtime.Store().Head(), "bad input wrote")
}

// TestUI_SocketOwnerIsAdmin: over the unix socket, with no token, the
// owner sees every tenant, as in the API.
func TestUI_SocketOwnerIsAdmin(t *testing.T) {
	var authz *api.Authorizer
	f := apitest.MustServe(t, apitest.Options{API: api.Options{
		Authorize: func(r *http.Request) (api.Principal, error) { return authz.Authorize(r) },
	}})
	authz = api.NewAuthorizer(f.Runtime.Tokens(), api.AuthorizerOptions{})
	for _, tenant := range []string{"acme", "other"} {
		_, err := f.Runtime.Deploy(context.Background(), state.Spec{Tenant: tenant, Name: "web", Command: []string{"sleep", "1000"}})
		require.NoError(t, err)
	}
	res, err := f.HTTP().Get(f.URL("/ui/"))
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	assert.Contains(t, string(body), `data-key="acme/web"`)
	assert.Contains(t, string(body), `data-key="other/web"`)

	res, err = f.HTTP().Get(f.URL("/ui/services/other/web"))
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ = io.ReadAll(res.Body)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	assert.Contains(t, string(body), `data-verb="restart"`, "the owner may write")
}
