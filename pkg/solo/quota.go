package solo

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/solo-rt/solo/pkg/state"
)

// Quotas: see "Quotas" in the package doc. [Runtime.admit] is the one
// check; the lock order is the service keys first, then the quota locks
// (quotas, then tenants, in order), so that no two writers deadlock.

// Retry hints of a [*state.QuotaError]: a task queue drains on its own; a
// count of services or sessions goes down only when someone removes one.
const (
	QuotaTasksRetry = 5 * time.Second
	QuotaCountRetry = time.Minute
)

type operatorKey struct{}

// AsOperator marks ctx as the operator's: its writes are not bound by the
// tenants' quotas.
func AsOperator(ctx context.Context) context.Context {
	return context.WithValue(ctx, operatorKey{}, true)
}

func isOperator(ctx context.Context) bool {
	op, _ := ctx.Value(operatorKey{}).(bool)
	return op
}

// Limits returns the quotas of tenant: the operator's defaults
// ([Options.Quotas]), each replaced by the tenant policy's if it sets one
// (see [Runtime.SetTenantPolicy]).
func (r *Runtime) Limits(tenant string) state.Limits {
	own, _, _ := r.world.tenantLimits(tenant)
	return r.opts.Quotas.Override(own)
}

// TenantRate returns the request rate (per second) and burst that
// tenant's policy sets for its tokens together; 0, 0 if it sets none (the
// operator's then apply: see the API's rate limits).
func (r *Runtime) TenantRate(tenant string) (rate float64, burst int) {
	_, rate, burst = r.world.tenantLimits(tenant)
	return rate, burst
}

// admit is the one quota check of a write that adds adding (per tenant) to
// what the tenants hold against quota (a state.Quota* name). It returns
// the release of the tenants' quota locks, to be called once the write is
// folded (or failed; it is idempotent), or a *state.QuotaError with no lock
// held. A write of
// the operator, or within no limit, takes no lock.
func (r *Runtime) admit(ctx context.Context, quota string, adding map[string]int) (release func(), err error) {
	var tenants []string
	for t, n := range adding {
		if n > 0 && r.Limits(t).Max(quota) > 0 {
			tenants = append(tenants, t)
		}
	}
	if len(tenants) == 0 || isOperator(ctx) {
		return func() {}, nil
	}
	slices.Sort(tenants)
	var unlocks []func()
	release = sync.OnceFunc(func() {
		for _, u := range slices.Backward(unlocks) {
			u()
		}
	})
	for _, t := range tenants {
		unlocks = append(unlocks, r.quotas.lock(state.Key{Tenant: t, Name: quota}))
		max := r.Limits(t).Max(quota)
		if have := r.world.usage(t).Count(quota); have+adding[t] > max {
			release()
			retry := QuotaCountRetry
			if quota == state.QuotaTasks {
				retry = QuotaTasksRetry
			}
			return nil, &state.QuotaError{Tenant: t, Limit: quota, Max: max, Have: have, Adding: adding[t], RetryAfter: retry}
		}
	}
	return release, nil
}

// checkQuotas refuses operator defaults that are not quotas.
func checkQuotas(l state.Limits) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("open solo: Options.Quotas: %w", err)
	}
	return nil
}
