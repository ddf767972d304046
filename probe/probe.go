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
// service for good (and with net/http two goroutines per connection),
// which most servers close after a few idle seconds anyway; a loopback
// connect per try costs less than that. A plain http:// probe is one GET
// written and its status line read by hand, without net/http's
// goroutines.
package probe

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
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

// client is shared by every HTTPS probe; it follows no redirect (a 3xx
// answer is ready) and keeps no idle connection.
var client = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// HTTP returns a probe that GETs url: ready on 2xx or 3xx. A plain http
// URL is probed by hand (see plainGET); https goes through net/http.
func HTTP(url string) Func {
	if get := plainGET(url); get != nil {
		return get
	}
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

// plainGET is the probe of an http:// URL: one connection, one HTTP/1.1
// GET with Connection: close, its status line read, the connection
// closed. net/http's client costs a probe a dial goroutine and a reader
// and a writer goroutine per connection: in the 1,000-service benchmark
// it used about 40% more CPU than this. Nil for a URL it
// does not handle (https, or one net/url refuses).
func plainGET(raw string) Func {
	u, err := neturl.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Hostname() == "" {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	req := []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: solo-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n")
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("GET %s: %w", raw, err)
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			c.SetDeadline(dl)
		}
		// A cancelled probe ends its read at once; no goroutine waits for it.
		defer context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })()
		if _, err := c.Write(req); err != nil {
			return fmt.Errorf("GET %s: %w", raw, err)
		}
		var buf [512]byte
		n := 0
		for !bytes.Contains(buf[:n], []byte("\n")) {
			if n == len(buf) {
				return fmt.Errorf("GET %s: no status line in the first %d bytes", raw, n)
			}
			k, err := c.Read(buf[n:])
			n += k
			if err != nil && !bytes.Contains(buf[:n], []byte("\n")) {
				return fmt.Errorf("GET %s: %w", raw, err)
			}
		}
		line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		// HTTP/1.x NNN Reason
		proto, rest, ok := bytes.Cut(line, []byte(" "))
		if !ok || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || len(rest) < 3 {
			return fmt.Errorf("GET %s: not an HTTP answer: %q", raw, line)
		}
		code, err := strconv.Atoi(string(rest[:3]))
		if err != nil {
			return fmt.Errorf("GET %s: not an HTTP answer: %q", raw, line)
		}
		if code < 200 || code > 399 {
			return fmt.Errorf("GET %s: %s", raw, rest)
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
