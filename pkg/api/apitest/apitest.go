// Package apitest gives tests a ready Solo API: a real runtime on a temp
// dir, served by a real [api.Server] on a unix socket, with helpers for a
// [client.Client], a raw *http.Client and waiting on events.
//
// It must never be imported by non-test code.
//
// # Concurrency
//
// A [Fixture] is safe for concurrent use; its helpers may be called from
// several goroutines, but report failures through the tb they are given.
package apitest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/api"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/supervisor"
)

// FastBackoff keeps restarts in tests short.
var FastBackoff = supervisor.Backoff{Base: 30 * time.Millisecond, Max: time.Second, Jitter: 0.1}

// WaitTimeout bounds every wait of the fixture: a test that waits longer
// fails instead of hanging.
const WaitTimeout = 30 * time.Second

// Options configure [MustServe]; the zero value is ready to use.
type Options struct {
	// API is passed to api.New. Metrics, if nil, is a fresh [api.Metrics]
	// on [Fixture.Registry], wired to the store's OnCommit.
	API api.Options
	// Runtime is passed to solo.Open. DataDir defaults to a temp dir and
	// Backoff to [FastBackoff]; Store.OnCommit is set to the metrics'.
	Runtime solo.Options
	// NotReady leaves /readyz answering 503.
	NotReady bool
}

// Fixture is a served runtime. Its fields are read-only.
type Fixture struct {
	Runtime  *solo.Runtime
	Server   *api.Server
	Metrics  *api.Metrics
	Registry *prometheus.Registry
	// Socket is the unix socket the server listens on.
	Socket  string
	DataDir string

	cancel context.CancelFunc
	served chan error
}

// MustServe opens a runtime and serves it on a unix socket until the test
// ends. At cleanup it stops the server (checking that Serve returns nil),
// closes the runtime, and checks the event log.
func MustServe(tb testing.TB, opts Options) *Fixture {
	tb.Helper()
	f := &Fixture{Registry: prometheus.NewRegistry()}
	if opts.Runtime.DataDir == "" {
		opts.Runtime.DataDir = tb.TempDir()
	}
	if opts.Runtime.Backoff == (supervisor.Backoff{}) {
		opts.Runtime.Backoff = FastBackoff
	}
	f.DataDir = opts.Runtime.DataDir
	f.Metrics = opts.API.Metrics
	if f.Metrics == nil {
		f.Metrics = api.NewMetrics(f.Registry)
		opts.API.Metrics = f.Metrics
	}
	storeOpts := eventstore.Options{}
	if opts.Runtime.Store != nil {
		storeOpts = *opts.Runtime.Store
	}
	storeOpts.OnCommit = f.Metrics.ObserveCommit
	opts.Runtime.Store = &storeOpts

	rt, err := solo.Open(context.Background(), opts.Runtime)
	if err != nil {
		tb.Fatalf("open runtime: %v", err)
	}
	f.Runtime = rt
	f.Metrics.Bind(rt)
	tb.Cleanup(func() {
		rt.Close(context.Background())
		CheckLog(tb, filepath.Join(f.DataDir, "solo.db"))
	})

	// Unix socket paths are limited to 108 bytes; a test's temp dir may be
	// longer, so the socket gets a short dir of its own.
	sockDir, err := os.MkdirTemp("", "solo")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(sockDir) })
	f.Socket = filepath.Join(sockDir, "api.sock")
	l, err := net.Listen("unix", f.Socket)
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	f.Server = api.New(rt, opts.API)
	if !opts.NotReady {
		f.Server.SetReady(true)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.served = cancel, make(chan error, 1)
	go func() { f.served <- f.Server.Serve(ctx, l) }()
	tb.Cleanup(func() {
		if err := f.Stop(); err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	return f
}

// Stop ends Serve and returns what it returned. It is idempotent.
func (f *Fixture) Stop() error {
	f.cancel()
	select {
	case err, ok := <-f.served:
		if ok {
			close(f.served)
		}
		return err
	case <-time.After(WaitTimeout):
		return errors.New("Serve did not return after its context ended")
	}
}

// Client returns a client of the fixture's socket (opts.Socket is set).
func (f *Fixture) Client(tb testing.TB, opts client.Options) *client.Client {
	tb.Helper()
	opts.Socket = f.Socket
	c, err := client.New(opts)
	if err != nil {
		tb.Fatalf("new client: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// HTTP returns a raw HTTP client that sends every request to the socket,
// whatever the URL's host; use [Fixture.URL] to build URLs.
func (f *Fixture) HTTP() *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", f.Socket)
		},
	}}
}

// URL returns the URL of path (with its query) for [Fixture.HTTP].
func (f *Fixture) URL(path string) string { return "http://solo" + path }

// WaitEvent returns the first event from position from on whose type is
// typ and, if subject is not empty, whose tenant and subject match. Before
// it returns, the runtime's world has folded the event, so Status reflects
// it. It fails the test after [WaitTimeout].
func (f *Fixture) WaitEvent(tb testing.TB, from uint64, typ, tenant, subject string) eventstore.Envelope {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	sub := f.Runtime.Events(ctx, from)
	for env := range sub.C() {
		if env.Type != typ || (subject != "" && (env.Tenant != tenant || env.Subject != subject)) {
			continue
		}
		if err := f.Runtime.Sync(ctx, env.Pos); err != nil {
			tb.Fatalf("sync to %d: %v", env.Pos, err)
		}
		return env
	}
	tb.Fatalf("no %s event for %s/%s from position %d: %v", typ, tenant, subject, from, sub.Err())
	return eventstore.Envelope{}
}

// CheckLog opens the store at path and fails the test unless its check is
// clean.
func CheckLog(tb testing.TB, path string) eventstore.CheckReport {
	tb.Helper()
	s, err := eventstore.Open(path, nil)
	if err != nil {
		tb.Errorf("open %s: %v", path, err)
		return eventstore.CheckReport{}
	}
	defer s.Close()
	rep, err := s.Check(context.Background())
	if err != nil {
		tb.Errorf("check %s: %v", path, err)
	}
	return rep
}
