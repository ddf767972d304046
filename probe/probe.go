// Package probe tells whether a service is ready and whether it stays
// healthy: an HTTP GET that answers 2xx or 3xx ([HTTP]), a TCP connect
// ([TCP]), or the systemd notify protocol (a unixgram socket the service
// sends READY=1 and WATCHDOG=1 to: [Notify]). An exec probe is the
// caller's own [Func] (Solo runs it as the service's child, in its
// cgroup).
//
// A probe is a function of a context: it returns nil when the service is
// ready, an error saying why not otherwise. [Until] repeats one on a timer
// until it passes or its context ends (readiness); a [Checker] runs the
// health checks of many services on timers, with bounded concurrency, and
// reports only changes of health; [Notify.Watchdog] restarts nothing
// itself but reports a missed WATCHDOG=1. Nothing here runs while no probe
// is asked for. It knows nothing of Solo.
//
// An HTTP probe keeps no idle connection: a health probe every 10 s would
// otherwise hold a descriptor in the daemon and a connection in each
// service for good, which most servers close after a few idle seconds
// anyway; a loopback connect per try costs less than that.
package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Func is one probe: nil means ready.
type Func func(ctx context.Context) error

// Interval is how long [Until] waits between two failed probes.
const Interval = 200 * time.Millisecond

// Attempt is the longest one probe may take.
const Attempt = 2 * time.Second

// Until runs probe every interval, each try bounded by [Attempt], until it
// passes (nil) or ctx ends (ctx's error, with the last probe's). It holds a
// timer between tries, never a busy loop.
func Until(ctx context.Context, interval time.Duration, probe Func) error {
	t := time.NewTimer(0)
	defer t.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last probe: %v)", context.Cause(ctx), last)
			}
			return context.Cause(ctx)
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, Attempt)
		last = probe(pctx)
		cancel()
		if last == nil {
			return nil
		}
		t.Reset(interval)
	}
}

// client is shared by every HTTP probe; it follows no redirect (a 3xx
// answer is ready) and keeps no idle connection.
var client = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// HTTP returns a probe that GETs url: ready on 2xx or 3xx.
func HTTP(url string) Func {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 399 {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// TCP returns a probe that connects to addr ("HOST:PORT").
func TCP(addr string) Func {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}
