package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// grantToken grants a token of tenant with scopes through the CLI.
func grantToken(t *testing.T, dir, tenant, scopes string) string {
	t.Helper()
	var g wire.TokenGrant
	out := mustCLI(t, dir, "token", "grant", "--tenant", tenant, "--scope", scopes, "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &g))
	return g.Token
}

// firstEvent is the first event of a service of type typ, through the CLI.
func firstEvent(t *testing.T, dir, name string, typ state.EventType) eventstore.Envelope {
	t.Helper()
	for line := range strings.Lines(mustCLI(t, dir, "events", "--service", name, "--json")) {
		var env eventstore.Envelope
		require.NoError(t, json.Unmarshal([]byte(line), &env))
		if env.Type == string(typ) {
			return env
		}
	}
	t.Fatalf("no %s event for %s", typ, name)
	return eventstore.Envelope{}
}

// login fills the page's login form with tok.
func login(t *testing.T, b *browser, base, tok string) {
	t.Helper()
	err := b.do(
		chromedp.Navigate(base+"/ui/login"),
		chromedp.SendKeys(chromedp.CSS("#token"), tok),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#services")),
	)
	if err != nil {
		html, _ := eval[string](b, `location.href + "\n" + document.documentElement.outerHTML`)
		t.Fatalf("log in: %v; the page:\n%s", err, html)
	}
}

// screenshot writes the page at 1280x800 as name under the test's
// artifact dir.
func screenshot(t *testing.T, b *browser, name string) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	path := filepath.Join(t.ArtifactDir(), name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// TestUI_Browser drives the web view in headless Chromium against a real
// daemon, with services deployed and crashed through the CLI.
func TestUI_Browser(t *testing.T) {
	dir := dataDir(t)
	d := startDaemon(t, dir, "--listen", "127.0.0.1:0")
	base := "http://" + d.tcpAddr(t)
	admin := grantToken(t, dir, "default", "read,logs,deploy,kill")
	readOnly := grantToken(t, dir, "default", "read,logs")
	mustCLI(t, dir, "token", "grant", "--tenant", "other", "--scope", "read", "--json")
	mustCLI(t, dir, "deploy", "theirs", "--tenant", "other", "--", "sleep", "1000")
	// A few neighbours in other states, for the screenshots.
	mustCLI(t, dir, "deploy", "api", "--", "sleep", "1000")
	mustCLI(t, dir, "deploy", "batch", "--restart", "never", "--", "sh", "-c", "exit 3")
	mustCLI(t, dir, "deploy", "old-worker", "--", "sleep", "1000")
	mustCLI(t, dir, "stop", "old-worker")

	b := newBrowser(t)
	login(t, b, base, admin)

	t.Run("loads with no console error", func(t *testing.T) {
		b.must(t, waitJS(`document.querySelector("#live.on") !== null`))
		assert.Empty(t, b.consoleErrors())
		n, err := eval[int](b, `document.querySelectorAll('tr[data-tenant="other"]').length`)
		require.NoError(t, err)
		assert.Zero(t, n, "another tenant's service appears")
	})

	t.Run("a deployed service appears without a reload", func(t *testing.T) {
		// Note when the row appears, from the page itself.
		_, err := eval[chromedp.Void](b, `window.__seen = 0; new MutationObserver((_, o) => {
			if (document.querySelector('tr[data-key="default/web"]')) { window.__seen = Date.now(); o.disconnect(); }
		}).observe(document.body, {subtree: true, childList: true}); undefined`)
		require.NoError(t, err)
		mustCLI(t, dir, "deploy", "web", "--", "sleep", "1000")
		b.must(t, waitJS(`window.__seen > 0`))
		seen, err := eval[int64](b, `window.__seen`)
		require.NoError(t, err)
		deployed := firstEvent(t, dir, "web", state.TypeServiceDeployed)
		took := time.UnixMilli(seen).Sub(deployed.Time)
		t.Logf("from the deploy's event to the row: %v", took)
		assert.Less(t, took, time.Second, "the row appeared %v after the deploy's event", took)
	})

	t.Run("a crash shows the new state and restart count", func(t *testing.T) {
		st := statusOf(t, dir, "web")
		require.NotZero(t, st.PID)
		require.NoError(t, syscall.Kill(st.PID, syscall.SIGKILL))
		b.must(t, waitJS(fmt.Sprintf(
			`(r => r && r.dataset.restarts === "1" && r.dataset.state === "running" && r.dataset.ready === "true" && r.dataset.pid !== "%d")(document.querySelector('tr[data-key="default/web"]'))`, st.PID)))
		after := statusOf(t, dir, "web")
		assert.Equal(t, 1, after.Restarts)
		text, err := eval[string](b, `document.querySelector('tr[data-key="default/web"] .pid').textContent`)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(after.PID), text)
		screenshot(t, b, "services.png")
	})

	t.Run("restart gives a new pid and its event shows", func(t *testing.T) {
		b.must(t,
			chromedp.Navigate(base+"/ui/services/default/web"),
			waitJS(`document.querySelector("#live.on") !== null`),
		)
		before := statusOf(t, dir, "web")
		b.must(t,
			chromedp.Click(chromedp.CSS(`button[data-verb="restart"]`)),
			waitJS(`document.querySelector("#result").textContent.includes("pid")`),
			waitJS(`document.querySelector('#events li[data-type="service_restart_requested"]') !== null`),
		)
		after := statusOf(t, dir, "web")
		assert.NotEqual(t, before.PID, after.PID)
		assert.NotZero(t, after.PID)
		result, err := eval[string](b, `document.querySelector("#result").textContent`)
		require.NoError(t, err)
		assert.Contains(t, result, fmt.Sprintf("pid %d", after.PID))
		assert.Contains(t, b.dialogSeen(), "confirm: restart default/web?")
		b.must(t, waitJS(fmt.Sprintf(`document.querySelector("#status").dataset.pid === "%d"`, after.PID)))
		screenshot(t, b, "service.png")
		assert.Empty(t, b.consoleErrors())
	})

	t.Run("a log with a script tag does not run it", func(t *testing.T) {
		mustCLI(t, dir, "deploy", "xss", "--", "sh", "-c", `echo '<script>alert(1)</script>'; echo '<img src=x onerror=alert(2)>'; exec sleep 1000`)
		b.must(t,
			chromedp.Navigate(base+"/ui/services/default/xss"),
			waitJS(`document.querySelector("#log").textContent.includes("<img src=x onerror=alert(2)>")`),
		)
		for _, d := range b.dialogSeen() {
			assert.False(t, strings.HasPrefix(d, "alert"), "an alert opened, the log ran as code: %s", d)
		}
		n, err := eval[int](b, `document.querySelectorAll("#log *, script:not([src])").length`)
		require.NoError(t, err)
		assert.Zero(t, n, "the log became elements")
	})

	t.Run("the event stream, live and filtered", func(t *testing.T) {
		b.must(t,
			chromedp.Navigate(base+"/ui/events"),
			waitJS(`document.querySelector('#events li[data-service="xss"][data-type="service_started"]') !== null`),
			chromedp.SendKeys(chromedp.CSS("#ev-service"), "web"),
			waitJS(`document.querySelector('#events li[data-service="xss"]').hidden`),
		)
		visible, err := eval[[]string](b, `Array.from(document.querySelectorAll("#events li")).filter(li => !li.hidden).map(li => li.dataset.service)`)
		require.NoError(t, err)
		require.NotEmpty(t, visible)
		for _, s := range visible {
			assert.Equal(t, "web", s)
		}
		// A new event arrives live, and the filter applies to it.
		mustCLI(t, dir, "signal", "web", "WINCH")
		b.must(t, waitJS(`(li => li && !li.hidden)(document.querySelector('#events li[data-type="service_signalled"]'))`))
		n, err := eval[int](b, `document.querySelectorAll('#events li[data-service="theirs"]').length`)
		require.NoError(t, err)
		assert.Zero(t, n, "another tenant's events appear")
	})

	t.Run("read-only token: no working write button, forged POST refused", func(t *testing.T) {
		b.must(t, chromedp.Navigate(base+"/ui/"))
		b.must(t, chromedp.Click(chromedp.CSS(`form.logout button`)), chromedp.WaitVisible(chromedp.CSS("#token")))
		login(t, b, base, readOnly)
		before := statusOf(t, dir, "web")
		b.must(t,
			chromedp.Navigate(base+"/ui/services/default/web"),
			chromedp.WaitVisible(chromedp.CSS("#status")),
		)
		n, err := eval[int](b, `document.querySelectorAll("button[data-verb]").length`)
		require.NoError(t, err)
		assert.Zero(t, n, "a read-only token sees a write button")
		// A forged POST from the page, without the CSRF token.
		status, err := eval[int](b, `fetch("/ui/api/services/default/web/restart", {method: "POST"}).then(r => r.status)`)
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, status)
		// With the CSRF token, the API refuses the scope.
		status, err = eval[int](b, `fetch("/ui/api/services/default/web/restart", {method: "POST", headers: {"X-Solo-CSRF": document.body.dataset.csrf}}).then(r => r.status)`)
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, status)
		// A forged POST with the admin's cookie, from another site.
		req, _ := http.NewRequest(http.MethodPost, base+"/ui/api/services/default/web/restart", nil)
		req.AddCookie(&http.Cookie{Name: "solo_token", Value: admin})
		req.Header.Set("Origin", "http://evil.example")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusForbidden, res.StatusCode)
		after := statusOf(t, dir, "web")
		assert.Equal(t, before.PID, after.PID, "a refused write restarted the service")
		assert.Equal(t, before.Generation, after.Generation)
	})

	t.Run("the token never shows", func(t *testing.T) {
		html, err := eval[string](b, `document.documentElement.outerHTML + location.href + document.cookie`)
		require.NoError(t, err)
		assert.NotContains(t, html, readOnly)
		assert.NotContains(t, html, admin)
		assert.NotContains(t, d.logs.String(), readOnly)
		assert.NotContains(t, d.logs.String(), admin)
	})
}
