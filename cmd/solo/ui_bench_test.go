package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// uiBenchServices is how many services the web view's benchmarks show.
const uiBenchServices = 1000

// startUIBench starts a daemon on TCP with uiBenchServices sleeping
// services, and returns it, its base URL, an admin token of their tenant
// and a client of its socket.
func startUIBench(b *testing.B) (*daemon, string, string, *client.Client) {
	b.Helper()
	dir := dataDir(b)
	d := startDaemon(b, dir, "--listen", "127.0.0.1:0")
	addr := d.tcpAddr(b)
	c, err := client.New(client.Options{Socket: dir + "/solo.sock"})
	require.NoError(b, err)
	b.Cleanup(func() { c.Close() })
	specs := make([]state.Spec, uiBenchServices)
	for i := range specs {
		specs[i] = state.Spec{Name: fmt.Sprintf("svc-%04d", i), Command: []string{"sleep", "100000"}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err = c.ApplyWait(ctx, wire.ApplyRequest{Services: specs}, time.Minute)
	require.NoError(b, err)
	var g wire.TokenGrant
	require.NoError(b, json.Unmarshal([]byte(mustCLI(b, dir, "token", "grant", "--tenant", "default", "--scope", "read,logs,deploy,kill", "--json")), &g))
	return d, "http://" + addr, g.Token, c
}

// openServicesPage logs tab in with tok and opens the services page; it
// returns once all rows are there and the live stream is open.
func openServicesPage(b *testing.B, tab *browser, base, tok string) {
	b.Helper()
	tab.must(b,
		chromedp.Navigate(base+"/ui/login"),
		chromedp.SendKeys(chromedp.CSS("#token"), tok),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#services")),
		waitJS(fmt.Sprintf(`document.querySelectorAll("#services tbody tr").length === %d && document.querySelector("#live.on") !== null`, uiBenchServices)),
	)
}

// BenchmarkUI_FirstRender1000 is the time from navigation to the first
// contentful paint of the services page with 1,000 services, and to the
// load event, in headless Chromium.
func BenchmarkUI_FirstRender1000(b *testing.B) {
	_, base, tok, _ := startUIBench(b)
	br := newBrowser(b)
	openServicesPage(b, br, base, tok)
	var fcp, load float64
	b.ResetTimer()
	for b.Loop() {
		br.must(b, chromedp.Navigate(base+"/ui/"))
		br.must(b, waitJS(`performance.getEntriesByName("first-contentful-paint").length > 0`))
		v, err := eval[[]float64](br, `[performance.getEntriesByName("first-contentful-paint")[0].startTime, performance.getEntriesByType("navigation")[0].loadEventEnd]`)
		require.NoError(b, err)
		fcp += v[0]
		load += v[1]
	}
	b.ReportMetric(fcp/float64(b.N), "ms-first-paint/op")
	b.ReportMetric(load/float64(b.N), "ms-load/op")
}

// BenchmarkUI_LiveStorm is the daemon's CPU during a storm of 100
// restarts a second (round robin over 100 of the 1,000 services), first
// with no page open, then with 10 services pages open on the live stream;
// it reports the extra CPU per open page, in percent of a core, at 100
// restarts a second (the browsers share the machine's cores with the
// daemon, so the storm may reach fewer: the figures are scaled by the rate
// reached). After the storm, each page must show the last restart's pid:
// it stayed live.
func BenchmarkUI_LiveStorm(b *testing.B) {
	d, base, tok, c := startUIBench(b)
	const pages, rate, window = 10, 100, 10 * time.Second
	storm := func() (cpu, done float64) {
		ctx, cancel := context.WithTimeout(context.Background(), window)
		defer cancel()
		start := cpuOf(b, d.pid())
		began := time.Now()
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		var wg sync.WaitGroup
		var restarted atomic.Int64
		sem := make(chan struct{}, 64)
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				wg.Wait()
				took := time.Since(began).Seconds()
				return (cpuOf(b, d.pid()) - start).Seconds() / took * 100, float64(restarted.Load()) / took
			case <-tick.C:
			}
			sem <- struct{}{}
			wg.Add(1)
			go func(name string) {
				defer func() { <-sem; wg.Done() }()
				if _, err := c.Restart(context.Background(), "default", name, 0); err == nil {
					restarted.Add(1)
				}
			}(fmt.Sprintf("svc-%04d", i%100))
		}
	}
	for b.Loop() {
		idle, idleRate := storm()
		br := newBrowser(b)
		tabs := []*browser{br}
		for len(tabs) < pages {
			tabs = append(tabs, br.session(b))
		}
		for _, tab := range tabs {
			openServicesPage(b, tab, base, tok)
		}
		open, openRate := storm()
		b.Logf("daemon CPU during the storm: %.1f%% of a core with no page (%.0f restarts/s), %.1f%% with %d pages (%.0f restarts/s)",
			idle, idleRate, open, pages, openRate)
		// Live: once the storm is over, every page shows the pid of the
		// last restart.
		res, err := c.Restart(context.Background(), "default", "svc-0099", 30*time.Second)
		require.NoError(b, err)
		require.True(b, res.Started, "svc-0099 did not start again: %s", res.StartError)
		for _, tab := range tabs {
			tab.must(b, waitJS(fmt.Sprintf(`(r => r && r.dataset.pid === "%d")(document.querySelector('tr[data-key="default/svc-0099"]'))`, res.Service.PID)))
		}
		chromedp.Cancel(br.ctx) // the next round starts with no page open
		b.ReportMetric(idleRate, "restarts/s-no-page")
		b.ReportMetric(openRate, "restarts/s-10-pages")
		b.ReportMetric(idle, "%cpu-no-page")
		b.ReportMetric(open, "%cpu-10-pages")
		// The storm is slower with the browsers on the same cores: compare
		// the daemon's CPU per restart a second, scaled to 100 a second.
		perPage := (open/openRate - idle/idleRate) * rate / pages
		b.ReportMetric(perPage, "%cpu-per-page-at-100/s")
	}
}

// cpuOf is the CPU time (user + system) process pid has used.
func cpuOf(tb testing.TB, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(tb, err)
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
