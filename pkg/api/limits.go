package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/solo-rt/solo/pkg/state"
)

// Names of the request rates, as a refusal's [wire.ErrorBody] Limit and
// the solo_api_rejected_total metric label them.
const (
	LimitTenantRate = "rate_per_tenant"
	LimitTokenRate  = "rate_per_token"
)

// DefaultMaxLimiters bounds the rate limiters kept at once, per kind (tenants,
// tokens); past it, idle ones are dropped at once rather than after
// [limiterIdleSweep].
const DefaultMaxLimiters = 10_000

// RateLimits are the request rates of [Options.Rates]: a token bucket per
// tenant and one per token (golang.org/x/time/rate), each refilled at its
// rate (requests per second) up to its burst. A zero rate means no limit
// of that kind. A tenant whose policy sets a rate and burst
// ([solo.Runtime.TenantRate]) has those instead of Tenant and TenantBurst. The requests of an unconfined principal (the local admin)
// are never limited: the operator must always be able to see and fix.
type RateLimits struct {
	Tenant      rate.Limit
	TenantBurst int
	Token       rate.Limit
	TokenBurst  int
	// Hold is how long the 429 of a request over a rate is held back, at
	// most until its Retry-After: a client that retries at once, in a
	// loop, then waits instead of spinning, and a flood of N such clients
	// costs at most N requests per Hold instead of all the CPU it can
	// take. The wait is a timer on the request's goroutine; it ends early
	// if the client goes away. 0: reply at once.
	Hold time.Duration
}

// hold waits before the reply to a request refused by a rate: see
// [RateLimits.Hold].
func (g *rateGate) hold(r *http.Request, err error) {
	var le *limitedError
	if g.opts.Hold <= 0 || !errors.As(err, &le) {
		return
	}
	t := time.NewTimer(min(g.opts.Hold, ceilSeconds(le.after))) // the Retry-After it is told
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// limitedError is a request refused by a limit: a rate here, or a quota of
// the runtime ([state.QuotaError], which [limitOf] reads too).
type limitedError struct {
	tenant, limit string
	after         time.Duration
	msg           string
}

func (e *limitedError) Error() string { return e.msg }

// limitOf returns the tenant, the limit and the retry hint of an error
// that is a refusal by a limit.
func limitOf(err error) (tenant, limit string, after time.Duration, ok bool) {
	var le *limitedError
	if errors.As(err, &le) {
		return le.tenant, le.limit, le.after, true
	}
	var qe *state.QuotaError
	if errors.As(err, &qe) {
		return qe.Tenant, qe.Limit, qe.RetryAfter, true
	}
	return "", "", 0, false
}

// limitHeaders sets Retry-After on the reply of a refusal by a limit.
func limitHeaders(w http.ResponseWriter, err error) {
	if _, _, after, ok := limitOf(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(ceilSeconds(after)/time.Second)))
	}
}

// limiterIdleSweep is how often limiters with a full bucket are dropped:
// a full bucket is the same as a new one, so dropping it changes nothing.
const limiterIdleSweep = time.Minute

// limiters are the token buckets of one kind (tenants or tokens), by key.
// They are dropped once full (idle long enough to have refilled), so the
// set stays bounded by those recently active.
type limiters struct {
	max int

	mu        sync.Mutex
	m         map[string]*rate.Limiter
	lastSweep time.Time
}

// get returns key's limiter at rate r and burst b (updated if they
// changed), making it if needed.
func (ls *limiters) get(key string, r rate.Limit, b int, now time.Time) *rate.Limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l, ok := ls.m[key]
	if !ok {
		if ls.m == nil {
			ls.m = map[string]*rate.Limiter{}
		}
		if len(ls.m) >= ls.max || now.Sub(ls.lastSweep) >= limiterIdleSweep {
			ls.sweep(now)
		}
		l = rate.NewLimiter(r, b)
		ls.m[key] = l
		return l
	}
	if l.Limit() != r {
		l.SetLimitAt(now, r)
	}
	if l.Burst() != b {
		l.SetBurstAt(now, b)
	}
	return l
}

// sweep drops the limiters whose bucket is full; ls.mu is held.
func (ls *limiters) sweep(now time.Time) {
	ls.lastSweep = now
	for k, l := range ls.m {
		if l.TokensAt(now) >= float64(l.Burst()) {
			delete(ls.m, k)
		}
	}
}

func (ls *limiters) len() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.m)
}

// rateGate applies [RateLimits] to the principals' requests, with a
// tenant's own rate (its policy's) in place of the tenants' default.
type rateGate struct {
	opts    RateLimits
	own     func(tenant string) (float64, int) // a tenant policy's rate and burst; 0, 0 for none
	now     func() time.Time
	tenants limiters
	tokens  limiters
}

func newRateGate(opts RateLimits, own func(string) (float64, int), now func() time.Time) *rateGate {
	return &rateGate{opts: opts, own: own, now: now, tenants: limiters{max: DefaultMaxLimiters}, tokens: limiters{max: DefaultMaxLimiters}}
}

// allow takes one request from p's token bucket and its tenant's, or
// refuses with a *limitedError and takes from neither. It is a map lookup
// and two reservations: cheap enough to run before anything else.
func (g *rateGate) allow(p Principal) error {
	if p.admin() {
		return nil
	}
	now := g.now()
	var taken []*rate.Reservation
	refuse := func(limit string, res *rate.Reservation, r rate.Limit, b int, who string) error {
		after := res.DelayFrom(now)
		if !res.OK() {
			after = time.Duration(float64(time.Second) / float64(r))
		}
		res.CancelAt(now)
		for _, t := range taken {
			t.CancelAt(now)
		}
		return &limitedError{tenant: p.Tenant, limit: limit, after: after, msg: fmt.Sprintf(
			"%s is over its rate of %s requests/s (burst %d, %s): retry in %s, or ask the operator to raise it",
			who, strconv.FormatFloat(float64(r), 'g', -1, 64), b, limit, ceilSeconds(after))}
	}
	if r := g.opts.Token; r > 0 {
		res := g.tokens.get(p.Actor, r, g.opts.TokenBurst, now).ReserveN(now, 1)
		if !res.OK() || res.DelayFrom(now) > 0 {
			return refuse(LimitTokenRate, res, r, g.opts.TokenBurst, fmt.Sprintf("token %s of tenant %s", p.Actor, p.Tenant))
		}
		taken = append(taken, res)
	}
	r, b := g.opts.Tenant, g.opts.TenantBurst
	if own, ownBurst := g.own(p.Tenant); own > 0 {
		r, b = rate.Limit(own), ownBurst
	}
	if r > 0 {
		res := g.tenants.get(p.Tenant, r, b, now).ReserveN(now, 1)
		if !res.OK() || res.DelayFrom(now) > 0 {
			return refuse(LimitTenantRate, res, r, b, "tenant "+p.Tenant)
		}
	}
	return nil
}
