package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
	"github.com/solo-rt/solo/supervisor"
)

// Bounds of the tail query parameter of the logs route.
const (
	DefaultLogTail = 100
	MaxLogTail     = 100_000
)

// routes is the route table; the package doc lists it.
func (s *Server) routes() {
	s.handle("GET /healthz", public, s.healthz)
	s.handle("GET /readyz", public, s.readyz)
	s.mux.Handle("GET /metrics", s.metrics.handler())

	s.handle("GET /v1/services", authed, s.listServices)
	s.handle("POST /v1/services", authed, s.deploy)
	s.handle("GET /v1/services/{tenant}/{name}", authed, s.status)
	s.handle("DELETE /v1/services/{tenant}/{name}", authed, s.kill)
	s.handle("POST /v1/services/{tenant}/{name}/stop", authed, s.kill)
	s.handle("POST /v1/services/{tenant}/{name}/start", authed, s.start)
	s.handle("POST /v1/services/{tenant}/{name}/restart", authed, s.restart)
	s.handle("POST /v1/services/{tenant}/{name}/signal", authed, s.signal)
	s.handle("POST /v1/services/{tenant}/{name}/remove", authed, s.remove)
	s.handle("GET /v1/services/{tenant}/{name}/logs", authed, s.logs)
	s.handle("GET /v1/services/{tenant}/{name}/why", authed, s.why)
	s.handle("GET /v1/events", authed, s.events)
	s.handle("GET /v1/db/check", authed, s.dbCheck)
	s.handle("GET /v1/db/backup", authed, s.dbBackup)
	s.handle("POST /v1/recover", authed, s.recover)
	s.handle("POST /v1/verify", authed, s.verify)
	s.sessionRoutes() // sessions.go
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if !s.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, wire.ErrorBody{Error: "not ready: recovering", Code: wire.CodeUnavailable})
		return nil
	}
	if f, ok := s.rt.StoreFault(); ok {
		// Unauthenticated: say what is wrong, not where (no path).
		why := "a write failed"
		var errno syscall.Errno
		if errors.As(f.Err, &errno) {
			why = errno.Error()
		}
		msg := fmt.Sprintf("not ready: the event log cannot be written (%s) since %s; services keep running, writes are refused", why, f.Since.UTC().Format(time.RFC3339))
		writeJSON(w, http.StatusServiceUnavailable, wire.ErrorBody{Error: msg, Code: wire.CodeUnavailable})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// listScope reads a list request's ?tenant= and returns the tenant the
// list covers ("" for every tenant) and whether the principal may see
// anything of it: a confined principal lists its own tenant, and another
// tenant's list is empty for it, as if nothing were there.
func listScope(r *http.Request, op string) (tenant string, visible bool, err error) {
	tenant = r.URL.Query().Get("tenant")
	if tenant != "" {
		if err := state.ValidName(tenant); err != nil {
			return "", false, &fieldError{Field: "tenant", Err: fmt.Errorf("%s: tenant: %w", op, err)}
		}
	}
	p, _ := PrincipalFrom(r.Context())
	switch {
	case p.admin():
		return tenant, true, nil
	case tenant == "" || tenant == p.Tenant:
		return p.Tenant, true, nil
	}
	return "", false, nil
}

func (s *Server) listServices(w http.ResponseWriter, r *http.Request) error {
	tenant, visible, err := listScope(r, "list")
	if err != nil {
		return err
	}
	views := []state.ServiceView{}
	if visible {
		views = append(views, s.rt.List(tenant)...)
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

func (s *Server) deploy(w http.ResponseWriter, r *http.Request) error {
	var spec state.Spec
	if err := s.decodeBody(w, r, &spec); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if p, _ := PrincipalFrom(r.Context()); !p.admin() {
		switch spec.Tenant {
		case "":
			spec.Tenant = p.Tenant // a confined principal's default tenant is its own
		case p.Tenant:
		default:
			return fmt.Errorf("deploy: tenant %q: %w: this principal may only deploy into tenant %q", spec.Tenant, errDenied, p.Tenant)
		}
	}
	wait, err := waitParam(r)
	if err != nil {
		return err
	}
	res, err := s.rt.Deploy(r.Context(), spec)
	if err != nil {
		return err
	}
	s.waitStarted(r.Context(), &res, wait)
	writeJSON(w, http.StatusOK, res)
	return nil
}

// MaxStartWait bounds the wait query parameter of deploy, start, restart
// and apply.
const MaxStartWait = 5 * time.Minute

// waitParam reads ?wait=DUR: how long to wait for the attempt a write asks
// for to start (see [solo.Runtime.WaitStarted]); absent or 0 means not to.
func waitParam(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxStartWait {
		return 0, badParam("wait", "%q is not a duration from 0 to %s", v, MaxStartWait)
	}
	return d, nil
}

// waitStarted waits up to wait for the attempt res asked for to start, and
// says how it went in res: Started, or StartError with the reason. A wait
// that ends first (or was not asked for) leaves both unset; the view says
// where the service is.
func (s *Server) waitStarted(ctx context.Context, res *wire.DeployResult, wait time.Duration) {
	if wait <= 0 || !res.Changed {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	v, err := s.rt.WaitStarted(ctx, res.Service.Tenant, res.Service.Name, res.Pos)
	if v.Name != "" {
		res.Service = v
	}
	switch {
	case err == nil && len(res.Service.WaitingFor) > 0:
		// In hand, its start waiting for its dependencies: not started,
		// and the view says what it waits for.
	case err == nil:
		res.Started = true
	case errors.Is(err, solo.ErrStartFailed):
		res.StartError = err.Error()
	}
}

// start and restart bring a service up again (see [solo.Runtime.Start]
// and [solo.Runtime.Restart]), waiting like deploy with ?wait.
func (s *Server) start(w http.ResponseWriter, r *http.Request) error {
	return s.startAgain(w, r, "start", s.rt.Start)
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request) error {
	return s.startAgain(w, r, "restart", s.rt.Restart)
}

func (s *Server) startAgain(w http.ResponseWriter, r *http.Request, op string,
	verb func(context.Context, string, string) (wire.DeployResult, error)) error {
	key, err := lookupKey(r, op)
	if err != nil {
		return err
	}
	wait, err := waitParam(r)
	if err != nil {
		return err
	}
	res, err := verb(r.Context(), key.Tenant, key.Name)
	if err != nil {
		return sameNotFound(key, err)
	}
	s.waitStarted(r.Context(), &res, wait)
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) signal(w http.ResponseWriter, r *http.Request) error {
	key, err := lookupKey(r, "signal")
	if err != nil {
		return err
	}
	var req wire.SignalRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return fmt.Errorf("signal: %w", err)
	}
	res, err := s.rt.Signal(r.Context(), key.Tenant, key.Name, req.Signal)
	if err != nil {
		if errors.Is(err, solo.ErrBadSignal) {
			return &fieldError{Field: "signal", Err: err}
		}
		return sameNotFound(key, err)
	}
	writeJSON(w, http.StatusOK, wire.SignalResult{Tenant: key.Tenant, Name: key.Name, PID: res.PID, Signal: res.Signal})
	return nil
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) error {
	key, err := lookupKey(r, "remove")
	if err != nil {
		return err
	}
	if err := s.rt.Remove(r.Context(), key.Tenant, key.Name); err != nil {
		return sameNotFound(key, err)
	}
	writeJSON(w, http.StatusOK, wire.RemoveResult{Tenant: key.Tenant, Name: key.Name, Removed: true})
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	key, err := lookupKey(r, "status")
	if err != nil {
		return err
	}
	view, err := s.rt.Status(key.Tenant, key.Name)
	if err != nil {
		return sameNotFound(key, err)
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

// MaxWhyLines bounds the lines query parameter of the why route.
const MaxWhyLines = 1000

// why tells the service's recent story in sentences (solo.Runtime.Why).
func (s *Server) why(w http.ResponseWriter, r *http.Request) error {
	key, err := lookupKey(r, "why")
	if err != nil {
		return err
	}
	n, err := intParam(r.URL.Query().Get("lines"), "lines", 0, MaxWhyLines)
	if err != nil {
		return err
	}
	lines, err := s.rt.Why(key.Tenant, key.Name, n)
	if err != nil {
		return sameNotFound(key, err)
	}
	if lines == nil {
		lines = []state.StoryLine{}
	}
	writeJSON(w, http.StatusOK, wire.Story{Tenant: key.Tenant, Name: key.Name, Lines: lines})
	return nil
}

func (s *Server) kill(w http.ResponseWriter, r *http.Request) error {
	key, err := lookupKey(r, "kill")
	if err != nil {
		return err
	}
	if err := s.rt.Kill(r.Context(), key.Tenant, key.Name); err != nil {
		return sameNotFound(key, err)
	}
	writeJSON(w, http.StatusOK, wire.KillResult{Tenant: key.Tenant, Name: key.Name, Killed: true})
	return nil
}

// logs sends the last tail lines, then, with follow, what the service
// writes next, until the client goes away or the server shuts down.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) error {
	key, err := lookupKey(r, "logs")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	tail, err := intParam(q.Get("tail"), "tail", DefaultLogTail, MaxLogTail)
	if err != nil {
		return err
	}
	follow, err := boolParam(q.Get("follow"), "follow")
	if err != nil {
		return err
	}
	if v := q.Get("since"); v != "" {
		return s.logsSince(w, r, key, v, q.Get("tail"), tail, follow)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if follow {
		if _, err := s.rt.Status(key.Tenant, key.Name); err != nil {
			return sameNotFound(key, err)
		}
		w.WriteHeader(http.StatusOK)
		fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
		ctx, cancel := s.streamContext(r)
		defer cancel()
		if err := s.followLogs(ctx, key, tail, fw); err != nil && ctx.Err() == nil {
			return fmt.Errorf("follow logs of %s: %w", key, err)
		}
		return nil
	}
	var past []byte
	if tail > 0 {
		past, err = s.rt.Logs(key.Tenant, key.Name, tail)
	} else {
		// The runtime reads 0 as "everything kept"; here it means no past
		// lines, but the service must still exist.
		_, err = s.rt.Status(key.Tenant, key.Name)
	}
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && tail > 0) {
		return sameNotFound(key, err)
	}
	h.Set("Content-Length", strconv.Itoa(len(past)))
	w.WriteHeader(http.StatusOK)
	w.Write(past)
	return nil
}

// logsSince sends the lines of key's log stamped within the last since
// (a Go duration), the last tail of them if tail was given, then, with
// follow, what comes next. A log without timestamps cannot say when its
// lines were written: that is refused, saying how to get them.
func (s *Server) logsSince(w http.ResponseWriter, r *http.Request, key state.Key, v, tailParam string, tail int, follow bool) error {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return badParam("since", "%q is not a positive duration such as 10m", v)
	}
	st, err := s.rt.Status(key.Tenant, key.Name)
	if err != nil {
		return sameNotFound(key, err)
	}
	if !st.Spec.Log.Timestamps {
		return badParam("since", "the log of %s has no timestamps to tell when its lines were written; deploy it with --log-timestamps (apply: log: {timestamps: true})", key)
	}
	since := time.Now().Add(-d)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if follow {
		w.WriteHeader(http.StatusOK)
		fw := &supervisor.SinceWriter{W: &flushWriter{w: w, rc: http.NewResponseController(w)}, Since: since}
		ctx, cancel := s.streamContext(r)
		defer cancel()
		// Everything kept, through the filter; tail does not apply to a
		// follow from a time.
		if err := s.followLogs(ctx, key, math.MaxInt32, fw); err != nil && ctx.Err() == nil {
			return fmt.Errorf("follow logs of %s: %w", key, err)
		}
		return nil
	}
	past, err := s.rt.Logs(key.Tenant, key.Name, 0)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return sameNotFound(key, err)
	}
	var buf bytes.Buffer
	sw := &supervisor.SinceWriter{W: &buf, Since: since}
	sw.Write(past)
	sw.Flush()
	out := buf.Bytes()
	if tailParam != "" {
		out = lastLines(out, tail)
	}
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	return nil
}

// lastLines returns the last n lines of b (a last line without '\n'
// counts).
func lastLines(b []byte, n int) []byte {
	if n <= 0 {
		return nil
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			if n--; n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}

// followLogs sends the last tail lines of key's log (none if tail is 0),
// then follows it, with no line lost between the two. A service that has
// no log file yet (it has not started) is waited for: the next event about
// it may bring one, which is then sent from its first byte.
func (s *Server) followLogs(ctx context.Context, key state.Key, tail int, w io.Writer) error {
	for {
		next := s.rt.Store().Head() + 1
		var err error
		if tail > 0 {
			err = s.rt.TailFollowLogs(ctx, key.Tenant, key.Name, tail, w)
		} else {
			err = s.rt.FollowLogs(ctx, key.Tenant, key.Name, w)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := s.nextEventOf(ctx, key, next); err != nil {
			return err
		}
		tail = math.MaxInt32 // a log that appears later is new: all of it
	}
}

// nextEventOf returns once an event about key at position from or later is
// in the log.
func (s *Server) nextEventOf(ctx context.Context, key state.Key, from uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub := s.rt.Events(ctx, from)
	for env := range sub.C() {
		if env.Tenant == key.Tenant && env.Subject == key.Name {
			return nil
		}
	}
	return sub.Err()
}

// streamContext is the context of a long-lived reply: it ends when the
// client goes away or when a Serve shuts down.
func (s *Server) streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.streams, cancel)
	return ctx, func() { stop(); cancel() }
}

// flushWriter sends every write to the client at once.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f *flushWriter) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, f.rc.Flush()
	}
	n, err := f.w.Write(b)
	if err != nil {
		return n, err
	}
	return n, f.rc.Flush()
}

// decodeBody reads one JSON object into v: at most MaxBodyBytes, no unknown
// field, nothing after it.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return fmt.Errorf("body is over %d bytes: %w", s.opts.MaxBodyBytes, err)
		case errors.Is(err, io.EOF):
			return badRequest("body is empty")
		}
		return fmt.Errorf("%w: body: %w", errBadRequest, err)
	}
	// Anything but white space after the object is refused: a second
	// object or garbage means the client sent something other than it
	// thinks.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fmt.Errorf("body is over %d bytes: %w", s.opts.MaxBodyBytes, err)
		}
		return badRequest("body: unexpected data after the JSON object")
	}
	return nil
}

// intParam parses an optional integer query parameter in [0, limit].
func intParam(v, name string, def, limit int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > limit {
		return 0, badParam(name, "%q is not an integer from 0 to %d", v, limit)
	}
	return n, nil
}

// boolParam parses an optional boolean query parameter: 1/true or 0/false.
func boolParam(v, name string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badParam(name, "%q is not 0, 1, true or false", v)
	}
	return b, nil
}
