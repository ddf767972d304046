package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/wire"
)

// Defaults for [Options].
const (
	// DefaultMaxBodyBytes bounds a request body: a service spec is small.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultShutdownTimeout is how long [Server.Serve] waits for requests
	// in flight once its context ends, before it closes their connections.
	DefaultShutdownTimeout = 5 * time.Second
	// DefaultReadHeaderTimeout bounds how long a client may take to send
	// its request headers.
	DefaultReadHeaderTimeout = 10 * time.Second
)

// Options configure [New]. Every zero field means its documented default.
type Options struct {
	// Logger receives request logs (at debug level: method, route, status,
	// duration; never a body or a credential) and errors. Default: a null
	// logger.
	Logger hclog.Logger
	// MaxBodyBytes bounds a request body; a larger one answers 413.
	// Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Metrics records the HTTP and runtime metrics and serves /metrics;
	// New binds it to its runtime if it is not bound yet. Default: a fresh
	// [NewMetrics] on a private registry.
	Metrics *Metrics
	// Authorize decides who a /v1 request runs as, or refuses it with an
	// error; an [*AuthError] chooses 401 or 403, any other error answers
	// 500. It is called once per request, before the body is read, and
	// must be safe for concurrent use. /healthz, /readyz and /metrics are
	// not authorised. Default (nil): every request runs as the local admin,
	// Principal{Actor: "local"}.
	Authorize func(r *http.Request) (Principal, error)
	// ShutdownTimeout is how long [Server.Serve] lets requests in flight
	// finish once its context ends. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Rates limit the /v1 requests of each tenant and each token (see
	// [RateLimits]); checked right after authorisation, before the
	// handler reads anything. Default (zero): no limit.
	Rates RateLimits
	// Now is the rate limiters' clock. Default time.Now.
	Now func() time.Time
	// Nodes lists the nodes of the cluster the daemon belongs to, for
	// GET /v1/nodes (admin scope). Nil: not a cluster, and the route
	// answers 404 saying so.
	Nodes func(ctx context.Context) ([]wire.Node, error)
	// Drain starts (on) or ends the drain of a node, for POST and DELETE
	// /v1/nodes/{name}/drain (admin scope). An error wrapping
	// ErrNotFound answers 404. Nil: not a cluster (404).
	Drain func(ctx context.Context, node string, on bool) error
}

// Server is Solo's HTTP API over one [solo.Runtime]. See the package doc.
type Server struct {
	rt      *solo.Runtime
	opts    Options
	log     hclog.Logger
	metrics *Metrics
	mux     *http.ServeMux
	ready   atomic.Bool
	rates   *rateGate

	// streams ends every long-lived reply (followed events and logs) when
	// a Serve begins its shutdown: http.Server.Shutdown waits for idle
	// connections, and a follower is never idle.
	streams      context.Context
	cancelStream context.CancelFunc
}

// New returns a server for rt. It serves nothing until [Server.Serve] (or
// [Server.Handler] is mounted elsewhere). /readyz answers 503 until
// [Server.SetReady].
func New(rt *solo.Runtime, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Metrics.rt.CompareAndSwap(nil, rt) // bind, unless the daemon already did
	s := &Server{rt: rt, opts: opts, log: opts.Logger, metrics: opts.Metrics, mux: http.NewServeMux(), rates: newRateGate(opts.Rates, rt.TenantRate, opts.Now)}
	s.streams, s.cancelStream = context.WithCancel(context.Background())
	s.routes()
	s.tokenRoutes()  // tokens.go
	s.secretRoutes() // secrets.go
	s.tenantRoutes() // tenants.go
	s.applyRoutes()  // apply.go
	s.uiRoutes()     // ui.go
	s.nodeRoutes()   // nodes.go
	return s
}

// SetReady sets what /readyz answers: 503 until the daemon has finished
// recovery and calls SetReady(true), 200 after.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Handler returns the whole API as one handler: routing, authorisation,
// JSON errors (for unknown routes and wrong methods too), metrics and
// request logs.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve answers requests on l until ctx ends, then shuts down gracefully:
// it stops accepting, ends followed streams, lets other requests in flight
// finish within [Options.ShutdownTimeout], then closes what is left. It
// closes l. It returns nil after a shutdown caused by ctx, or the error
// that stopped it otherwise.
//
// Serve may run on several listeners at once (a unix socket and a TCP
// port); the end of any one's ctx ends the followed streams of all.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          s.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnContext:       connContext, // which listener, for authorisation (authz.go)
	}
	done := make(chan struct{})
	shut := make(chan error, 1)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			shut <- nil
			return
		}
		s.cancelStream()
		sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
		defer cancel()
		err := srv.Shutdown(sctx)
		if err != nil {
			s.log.Warn("requests still in flight at the end of the shutdown timeout; closing them", "error", err)
			srv.Close()
		}
		shut <- nil
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return <-shut
	}
	close(done)
	<-shut
	srv.Close()
	return fmt.Errorf("serve %s: %w", l.Addr(), err)
}

// handlerFunc is a route's handler: it returns its error instead of
// writing it, so that [classify] alone maps errors to replies.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route access.
const (
	public = false // no authorisation: health, readiness, metrics
	authed = true
)

// handle registers a route.
func (s *Server) handle(pattern string, auth bool, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if auth {
			p, err := s.authorize(r)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			if err := s.rates.allow(p); err != nil {
				s.rates.hold(r, err)
				s.fail(w, r, err)
				return
			}
			r = r.WithContext(withPrincipal(r.Context(), p))
		}
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// fail writes err as the reply, unless the reply has begun (a stream that
// broke): then it can only be logged.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if rw, ok := w.(*recorder); ok && rw.status != 0 {
		s.log.Debug("request failed after its reply began", "method", r.Method, "route", r.Pattern, "error", err)
		return
	}
	authHeaders(w, err)  // WWW-Authenticate, Retry-After (authz.go)
	limitHeaders(w, err) // Retry-After (limits.go)
	if tenant, limit, _, ok := limitOf(err); ok {
		s.metrics.rejected(tenant, limit)
	}
	status := writeJSONError(w, err)
	if status >= 500 && status != http.StatusServiceUnavailable {
		s.log.Error("request failed", "method", r.Method, "route", r.Pattern, "status", status, "error", err)
	}
}

// serveHTTP wraps the mux: it refuses paths that are not canonical (the
// mux would redirect them), answers unknown routes and wrong methods with
// JSON, and records every request in the metrics and the debug log.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &recorder{ResponseWriter: w}
	route := "unmatched"
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panicked", "method", r.Method, "route", route, "panic", v)
			if rw.status == 0 {
				writeJSONError(rw, fmt.Errorf("internal error"))
			}
		}
		status := rw.status
		if status == 0 {
			status = http.StatusOK
		}
		took := time.Since(start)
		s.metrics.observeRequest(route, status, took)
		s.log.Debug("request", "method", r.Method, "route", route, "status", status, "duration", took)
	}()

	if p := r.URL.Path; p != cleanPath(p) {
		s.fail(rw, r, badRequest("path %q is not canonical", p))
		return
	}
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		s.noRoute(rw, r, h)
		return
	}
	route = pattern
	s.mux.ServeHTTP(rw, r)
}

// noRoute answers a request that no pattern matches: 405 with Allow if the
// path exists for other methods, else 404. The mux's own handler decides
// which; its text reply is replaced by JSON.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request, h http.Handler) {
	probe := &probeWriter{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, wire.ErrorBody{
			Error: fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow),
			Code:  wire.CodeInvalid,
		})
		return
	}
	s.fail(w, r, fmt.Errorf("%w: %s %s", errNoRoute, r.Method, r.URL.Path))
}

// cleanPath is the mux's path cleaning: path.Clean, keeping a trailing
// slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// recorder remembers the status of a reply. Unwrap lets
// http.ResponseController reach the connection's Flush.
type recorder struct {
	http.ResponseWriter
	status int
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 && code >= 200 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	return rw.ResponseWriter.Write(b)
}

func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// probeWriter captures what the mux's not-found or not-allowed handler
// would write.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

func (p *probeWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
