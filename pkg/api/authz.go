package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// Defaults for [AuthorizerOptions].
const (
	// DefaultMaxAuthFailures is how many failed authentications a source
	// may make in a burst before it is throttled.
	DefaultMaxAuthFailures = 10
	// DefaultAuthFailureWindow is how long a source takes to earn back a
	// full burst: one failure is forgiven every
	// DefaultAuthFailureWindow/DefaultMaxAuthFailures.
	DefaultAuthFailureWindow = time.Minute
	// DefaultMaxAuthSources bounds how many sources the throttle tracks.
	DefaultMaxAuthSources = 10_000
)

// AuthorizerOptions configure [NewAuthorizer]. Every zero field means its
// documented default.
type AuthorizerOptions struct {
	// RequireToken makes requests on the unix socket need a token too.
	// Without it, the socket's owner is the local admin (the socket is
	// mode 0600), as with Docker's socket.
	RequireToken bool
	// MaxFailures is how many failed authentications (401s) a source may
	// make in a burst; after that it gets 429 until it has earned one back.
	// Default DefaultMaxAuthFailures.
	MaxFailures int
	// FailureWindow is how long a source takes to earn back MaxFailures.
	// Default DefaultAuthFailureWindow.
	FailureWindow time.Duration
	// MaxSources bounds the sources tracked at once. When it is reached,
	// sources with a full allowance are forgotten; if none has, a new
	// source is not tracked (it is let through to authentication, which
	// still refuses bad tokens). Default DefaultMaxAuthSources.
	MaxSources int
	// Now is the throttle's clock. Default time.Now.
	Now func() time.Time
	// Logger receives one debug line per refusal: source, route and reason,
	// never the credential. Default: a null logger.
	Logger hclog.Logger
}

// Authorizer authorises /v1 requests with capability tokens: plug its
// [Authorizer.Authorize] into [Options.Authorize].
//
// A request on TCP must carry "Authorization: Bearer <token>". A request
// on the unix socket runs as the local admin unless
// [AuthorizerOptions.RequireToken] is set or it carries a token (a caller
// who sends SOLO_TOKEN asks to act as that token, and does).
//
// Each route needs one scope (see [RouteScope]). A token acts only in its
// own tenant: a route naming a service of another tenant, or one outside
// the token's service pattern, answers 404 as for a service that does not
// exist; a missing scope answers 403 naming the scope; a missing,
// malformed, mistyped, unknown, expired or revoked token answers 401 with
// a message that never contains the token. A token bound to a service
// pattern may deploy and act on matching services only; routes that span
// a whole tenant (lists, events, tokens, apply, recover) refuse it with
// 403 rather than show it more than its pattern.
//
// Failed authentications are throttled per source (remote IP on TCP, peer
// uid on the socket) with a token bucket (only refusals of a credential
// count: a token store that cannot answer, say an etcd copy not in sync
// during a blip, answers 503 and costs the source nothing): after [AuthorizerOptions.MaxFailures]
// in a burst, the source's requests answer 429 with Retry-After until it
// has earned a failure back, whatever credential they carry.
//
// An Authorizer is safe for concurrent use. It reads tokens from memory
// only (see [capability.Store.Authenticate]).
//
// Caveats: a token is always confined to its tenant, even with scope
// admin, so routes over the whole database (db check, db backup, verify)
// answer 403 to every token and serve only the local admin: with
// RequireToken set, nobody can call them while the daemon runs. A token
// travels in clear text over plain TCP: bind --listen to loopback or put
// TLS in front.
type Authorizer struct {
	tokens *solo.Tokens
	opts   AuthorizerOptions
	log    hclog.Logger
	thr    throttle
}

// NewAuthorizer returns an authorizer over tokens (a runtime's
// [solo.Runtime.Tokens]).
func NewAuthorizer(tokens *solo.Tokens, opts AuthorizerOptions) *Authorizer {
	if opts.MaxFailures <= 0 {
		opts.MaxFailures = DefaultMaxAuthFailures
	}
	if opts.FailureWindow <= 0 {
		opts.FailureWindow = DefaultAuthFailureWindow
	}
	if opts.MaxSources <= 0 {
		opts.MaxSources = DefaultMaxAuthSources
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	return &Authorizer{
		tokens: tokens, opts: opts, log: opts.Logger,
		thr: throttle{
			burst: float64(opts.MaxFailures),
			every: opts.FailureWindow / time.Duration(opts.MaxFailures),
			max:   opts.MaxSources,
			now:   opts.Now,
			src:   map[string]*bucket{},
		},
	}
}

// Authorize decides who r runs as; see [Authorizer]. It is meant for
// [Options.Authorize], which calls it once the route is matched (so
// r.Pattern and r.PathValue are set) and before the handler reads the
// body.
func (a *Authorizer) Authorize(r *http.Request) (Principal, error) {
	conn := connFrom(r.Context())
	header := r.Header.Get("Authorization")
	if conn.local && !a.opts.RequireToken && header == "" {
		return Principal{Actor: LocalActor}, nil
	}
	if wait, ok := a.thr.allow(conn.source); !ok {
		a.log.Debug("request throttled", "source", conn.source, "route", r.Pattern, "retry_after", wait)
		return Principal{}, &throttledError{after: wait, auth: &AuthError{
			Status: http.StatusTooManyRequests, Code: wire.CodeThrottled,
			Msg: fmt.Sprintf("too many failed authentications from this source: retry in %s", ceilSeconds(wait)),
		}}
	}
	tok, err := a.authenticate(header)
	if err != nil {
		if !refused(err) {
			// The token store's own fault (a closed runtime, a copy not in
			// sync with the cluster): the caller's credential was not
			// judged, so it is no failed authentication.
			return Principal{}, err
		}
		a.thr.fail(conn.source)
		a.log.Debug("request refused", "source", conn.source, "route", r.Pattern, "reason", err)
		return Principal{}, err
	}
	if err := a.check(r, tok); err != nil {
		a.log.Debug("request denied", "source", conn.source, "route", r.Pattern, "token", tok.ID, "reason", err)
		return Principal{}, err
	}
	return Principal{Actor: tok.ID, Tenant: tok.Tenant}, nil
}

// refused reports whether err is a refusal of the caller's credentials
// (an [*AuthError]), as opposed to a fault of the server. Only refusals
// count toward the per-source throttle and solo_auth_failures_total.
func refused(err error) bool {
	var ae *AuthError
	return errors.As(err, &ae)
}

// authenticate reads the bearer token of an Authorization header. Every
// refusal is a 401 whose message names what is wrong, never the token.
func (a *Authorizer) authenticate(header string) (capability.Token, error) {
	unauthorized := func(msg string) error {
		return &AuthError{Status: http.StatusUnauthorized, Code: wire.CodeUnauthorized, Msg: msg}
	}
	if header == "" {
		return capability.Token{}, unauthorized("no token: send the header \"Authorization: Bearer <token>\" (the CLI reads SOLO_TOKEN or --token)")
	}
	scheme, plaintext, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return capability.Token{}, unauthorized("the Authorization header must be \"Bearer <token>\"")
	}
	tok, err := a.tokens.Authenticate(strings.TrimSpace(plaintext))
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(err, capability.ErrMalformed):
		return tok, unauthorized(fmt.Sprintf("malformed token: a Solo token is %q followed by %d base62 characters (truncated or not a Solo token?)",
			capability.Prefix, capability.PlaintextLen-len(capability.Prefix)))
	case errors.Is(err, capability.ErrChecksum):
		return tok, unauthorized("token checksum mismatch: the token is mistyped or damaged")
	case errors.Is(err, capability.ErrUnknown):
		return tok, unauthorized("unknown token: never granted here, or deleted after it expired")
	case errors.Is(err, capability.ErrRevoked):
		return tok, unauthorized(fmt.Sprintf("token %s was revoked at %s", tok.ID, tok.RevokedAt.Format(time.RFC3339)))
	case errors.Is(err, capability.ErrExpired):
		return tok, unauthorized(fmt.Sprintf("token %s expired at %s", tok.ID, tok.ExpiresAt.Format(time.RFC3339)))
	}
	return tok, fmt.Errorf("authenticate: %w", err) // a closed runtime: 503
}

// check applies the route's scope, the token's tenant and its service
// pattern to r.
func (a *Authorizer) check(r *http.Request, tok capability.Token) error {
	scope := RouteScope(r.Pattern)
	tenant, name := r.PathValue("tenant"), r.PathValue("name")
	if tenant != "" || name != "" {
		err := tok.Allows(scope, tenant, name)
		if errors.Is(err, capability.ErrWrongTenant) || errors.Is(err, capability.ErrWrongService) {
			// The same answer whether or not the service exists.
			return notFound(state.Key{Tenant: tenant, Name: name})
		}
		return denyScope(err)
	}
	if !tok.Has(scope) {
		return denyScope(&capability.ScopeError{TokenID: tok.ID, Scope: scope})
	}
	if tok.Services == "" {
		return nil
	}
	if r.Method == http.MethodPost && r.URL.Path == "/v1/services" {
		return a.checkDeployName(r, tok)
	}
	return &AuthError{Status: http.StatusForbidden, Code: wire.CodeDenied, Msg: fmt.Sprintf(
		"token %s is bound to services %q; %s %s spans the whole tenant", tok.ID, tok.Services, r.Method, r.URL.Path)}
}

// denyScope turns a [*capability.ScopeError] into a 403 naming the scope.
func denyScope(err error) error {
	var se *capability.ScopeError
	if errors.As(err, &se) {
		return &AuthError{Status: http.StatusForbidden, Code: wire.CodeDenied, Msg: se.Error()}
	}
	return err
}

// maxPeek bounds how much of a deploy body a pattern-bound token's request
// is read ahead; the handler bounds the body again with its own limit.
const maxPeek = DefaultMaxBodyBytes

// checkDeployName reads the name of the service a deploy names, for a
// token bound to a pattern, and puts the body back for the handler. A body
// that does not decode is left to the handler to refuse.
func (a *Authorizer) checkDeployName(r *http.Request, tok capability.Token) error {
	head, err := io.ReadAll(io.LimitReader(r.Body, maxPeek))
	if err != nil {
		return badRequest("body: %v", err)
	}
	r.Body = readCloser{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	var spec struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(head, &spec) != nil || spec.Name == "" {
		return nil
	}
	if !tok.MatchService(spec.Name) {
		return &AuthError{Status: http.StatusForbidden, Code: wire.CodeDenied, Msg: fmt.Sprintf(
			"token %s is bound to services %q; it may not deploy %q", tok.ID, tok.Services, spec.Name)}
	}
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// routeScopes is the scope of each route. Routes it does not list need
// what [RouteScope] says.
var routeScopes = map[string]capability.Scope{
	"GET /v1/services":                      capability.ScopeRead,
	"GET /v1/services/{tenant}/{name}":      capability.ScopeRead,
	"GET /v1/events":                        capability.ScopeRead,
	"GET /v1/services/{tenant}/{name}/logs": capability.ScopeLogs,
	"GET /v1/services/{tenant}/{name}/why":  capability.ScopeRead,
	"POST /v1/services":                     capability.ScopeDeploy,
	"DELETE /v1/services/{tenant}/{name}":   capability.ScopeKill,
	// The lifecycle verbs: bringing a service up is deploying it; taking
	// it down, signalling it or forgetting it needs kill.
	"POST /v1/services/{tenant}/{name}/start":   capability.ScopeDeploy,
	"POST /v1/services/{tenant}/{name}/restart": capability.ScopeDeploy,
	"POST /v1/services/{tenant}/{name}/stop":    capability.ScopeKill,
	"POST /v1/services/{tenant}/{name}/signal":  capability.ScopeKill,
	"POST /v1/services/{tenant}/{name}/remove":  capability.ScopeKill,
	"GET /v1/db/check":                          capability.ScopeAdmin,
	"GET /v1/db/backup":                         capability.ScopeAdmin,
	"POST /v1/tokens":                           capability.ScopeAdmin,
	"GET /v1/tokens":                            capability.ScopeAdmin,
	"DELETE /v1/tokens/{id}":                    capability.ScopeAdmin,
	"POST /v1/apply":                            capability.ScopeDeploy,
	"POST /v1/recover":                          capability.ScopeDeploy,
	"POST /v1/verify":                           capability.ScopeAdmin,
	// The vault: setting, listing and removing secrets (no route reads a
	// value back).
	"PUT /v1/secrets/{tenant}/{name}":    capability.ScopeSecrets,
	"GET /v1/secrets":                    capability.ScopeSecrets,
	"DELETE /v1/secrets/{tenant}/{name}": capability.ScopeSecrets,
	// Tenant policies: the local admin only (see tenantRoutes).
	"PUT /v1/tenants/{id}": capability.ScopeAdmin,
	"GET /v1/tenants/{id}": capability.ScopeAdmin,
	"GET /v1/tenants":      capability.ScopeAdmin,
	// Kernel sessions: running code is as strong as deploying it.
	"GET /v1/sessions":                          capability.ScopeRead,
	"GET /v1/sessions/{tenant}/{name}":          capability.ScopeRead,
	"GET /v1/tasks/{id}":                        capability.ScopeRead,
	"GET /v1/tasks/{id}/output":                 capability.ScopeLogs,
	"POST /v1/sessions":                         capability.ScopeDeploy,
	"POST /v1/sessions/{tenant}/{name}/tasks":   capability.ScopeDeploy,
	"DELETE /v1/sessions/{tenant}/{name}":       capability.ScopeKill,
	"POST /v1/sessions/{tenant}/{name}/restart": capability.ScopeDeploy,
	"POST /v1/tasks/{id}/cancel":                capability.ScopeKill,

	// Session assets: listing renews their leases (a read); marking a file
	// schedules its deletion.
	"GET /v1/sessions/{tenant}/{name}/assets":  capability.ScopeRead,
	"POST /v1/sessions/{tenant}/{name}/assets": capability.ScopeDeploy,
}

// RouteScope returns the scope a route pattern (as the mux matched it,
// "METHOD /path") needs: read for listing, status, why and events; logs for
// logs; deploy for deploy, start, restart, apply and recover; kill for
// kill (stop), signal and remove; secrets for the vault; admin for
// tokens, the database and verify, and for any route this table does not
// know, so that a new route fails closed until it is given its scope.
func RouteScope(pattern string) capability.Scope {
	if s, ok := routeScopes[pattern]; ok {
		return s
	}
	return capability.ScopeAdmin
}

// throttledError is a 429: the AuthError it wraps, and when to retry.
type throttledError struct {
	auth  *AuthError
	after time.Duration
}

func (e *throttledError) Error() string { return e.auth.Error() }
func (e *throttledError) Unwrap() error { return e.auth }

// authHeaders sets the headers an authorisation failure's reply carries:
// WWW-Authenticate on a 401, Retry-After on a 429.
func authHeaders(w http.ResponseWriter, err error) {
	var te *throttledError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(int(ceilSeconds(te.after)/time.Second)))
		return
	}
	var ae *AuthError
	if errors.As(err, &ae) && (ae.Status == 0 || ae.Status == http.StatusUnauthorized) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="solo"`)
	}
}

// ceilSeconds rounds d up to a whole second, at least one.
func ceilSeconds(d time.Duration) time.Duration {
	return max(time.Second, (d+time.Second-1)/time.Second*time.Second)
}

// throttle is a token bucket of allowed failures per source. A source
// starts with burst; each failure takes one; one comes back every
// `every`. A source with less than one left is refused until it has one.
type throttle struct {
	burst float64
	every time.Duration
	max   int
	now   func() time.Time

	mu  sync.Mutex
	src map[string]*bucket
}

type bucket struct {
	left float64   // failures still allowed, at last
	last time.Time // when left was last brought up to date
}

// refill brings b up to now and reports whether it is full.
func (t *throttle) refill(b *bucket, now time.Time) bool {
	if el := now.Sub(b.last); el > 0 {
		b.left = math.Min(t.burst, b.left+float64(el)/float64(t.every))
		b.last = now
	}
	return b.left >= t.burst
}

// allow reports whether source may try to authenticate, and if not, how
// long until it may.
func (t *throttle) allow(source string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.src[source]
	if b == nil {
		return 0, true
	}
	now := t.now()
	if t.refill(b, now) {
		delete(t.src, source) // a full bucket is the same as none
		return 0, true
	}
	if b.left >= 1 {
		return 0, true
	}
	return time.Duration((1 - b.left) * float64(t.every)), false
}

// fail takes one failure from source's allowance.
func (t *throttle) fail(source string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	b := t.src[source]
	if b == nil {
		if len(t.src) >= t.max {
			for k, o := range t.src {
				if t.refill(o, now) {
					delete(t.src, k)
				}
			}
			if len(t.src) >= t.max {
				return // full of throttled sources: this one goes untracked
			}
		}
		b = &bucket{left: t.burst, last: now}
		t.src[source] = b
	}
	t.refill(b, now)
	b.left = math.Max(0, b.left-1)
}

// connInfo is what the server knows of a request's connection.
type connInfo struct {
	local  bool   // the unix socket
	source string // the throttle's key: "ip:ADDR", "uid:N" or "unix"
}

type connKey struct{}

// connContext is the http.Server's ConnContext: it records which listener
// a connection came from, and its source, once per connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, infoOf(c))
}

func infoOf(c net.Conn) connInfo {
	switch c := c.(type) {
	case *net.UnixConn:
		info := connInfo{local: true, source: "unix"}
		if raw, err := c.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) {
				if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
					info.source = "uid:" + strconv.FormatUint(uint64(cred.Uid), 10)
				}
			})
		}
		return info
	case *net.TCPConn:
		if ap, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			return connInfo{source: "ip:" + ap.IP.String()}
		}
	}
	return connInfo{source: "addr:" + hostOf(c.RemoteAddr())}
}

func hostOf(a net.Addr) string {
	if a == nil {
		return "unknown"
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// connFrom returns the connection of a request. A request served without
// [Server.Serve] (a handler mounted elsewhere) is treated as remote: it
// needs a token.
func connFrom(ctx context.Context) connInfo {
	if c, ok := ctx.Value(connKey{}).(connInfo); ok {
		return c
	}
	return connInfo{source: "unknown"}
}
