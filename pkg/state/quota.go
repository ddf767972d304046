package state

import (
	"errors"
	"fmt"
	"time"
)

// Quota names, as a [QuotaError] reports them and metrics label them.
const (
	QuotaServices = "max_services" // services of a tenant, desired or not (kernel sessions' not counted)
	QuotaSessions = "max_sessions" // live kernel sessions of a tenant
	QuotaTasks    = "max_tasks"    // pending (queued, not yet running) tasks of a tenant's sessions
)

// Limits are how much one tenant may hold at once. 0 means no limit.
type Limits struct {
	Services int `json:"max_services,omitempty"`
	Sessions int `json:"max_sessions,omitempty"`
	Tasks    int `json:"max_tasks,omitempty"`
}

// Usage is how much a tenant holds, as its [Limits] count it.
type Usage struct {
	Services int
	Sessions int
	Tasks    int
}

// Usage counts what tenant holds in w: its services (what `solo ls`
// shows, stopped ones included, the services of kernel sessions left
// out: they count as sessions), its live sessions and their pending tasks.
func (w *World) Usage(tenant string) Usage {
	var u Usage
	for k := range w.services {
		if k.Tenant != tenant {
			continue
		}
		if _, kernel := w.sessions.SessionOfService(k); !kernel {
			u.Services++
		}
	}
	for k, s := range w.sessions.sessions {
		if k.Tenant == tenant && s.Live() {
			u.Sessions++
			u.Tasks += len(s.Queue)
		}
	}
	return u
}

// ErrQuota is wrapped by every [QuotaError].
var ErrQuota = errors.New("over quota")

// QuotaError is a write refused because it would take a tenant over one of
// its [Limits]. Nothing was written.
type QuotaError struct {
	Tenant string
	Limit  string // QuotaServices, QuotaSessions or QuotaTasks
	Max    int    // the limit
	Have   int    // what the tenant holds
	Adding int    // what the write would add
	// RetryAfter is a hint for when to try again: a queue drains on its
	// own, a count of services or sessions only by someone's removal.
	RetryAfter time.Duration
}

// Error names the tenant, the limit and what to do.
func (e *QuotaError) Error() string {
	what, fix := "services", "remove one (solo stop, then solo rm)"
	switch e.Limit {
	case QuotaSessions:
		what, fix = "sessions", "remove one (solo session rm)"
	case QuotaTasks:
		what, fix = "queued tasks", "wait for some to run"
	}
	if e.Adding > 1 {
		return fmt.Sprintf("tenant %s has %d %s and its quota is %d (%s): adding %d would go over; %s or ask the operator to raise it",
			e.Tenant, e.Have, what, e.Max, e.Limit, e.Adding, fix)
	}
	return fmt.Sprintf("tenant %s is at its quota of %d %s (%s); %s or ask the operator to raise it", e.Tenant, e.Max, what, e.Limit, fix)
}

// Unwrap returns [ErrQuota].
func (e *QuotaError) Unwrap() error { return ErrQuota }

// Max returns the limit named by quota (one of the Quota constants).
func (l Limits) Max(quota string) int {
	switch quota {
	case QuotaServices:
		return l.Services
	case QuotaSessions:
		return l.Sessions
	case QuotaTasks:
		return l.Tasks
	}
	return 0
}

// Count returns what u counts against quota.
func (u Usage) Count(quota string) int {
	switch quota {
	case QuotaServices:
		return u.Services
	case QuotaSessions:
		return u.Sessions
	case QuotaTasks:
		return u.Tasks
	}
	return 0
}

// negative returns the name of the first negative limit of l.
func (l Limits) negative() (string, bool) {
	for _, q := range []string{QuotaServices, QuotaSessions, QuotaTasks} {
		if l.Max(q) < 0 {
			return q, true
		}
	}
	return "", false
}

// Validate refuses a negative limit, naming it.
func (l Limits) Validate() error {
	if q, bad := l.negative(); bad {
		return fmt.Errorf("%s %d is negative: a quota is 0 (no limit) or more", q, l.Max(q))
	}
	return nil
}

// Override returns l with the non-zero limits of o in place of its own.
func (l Limits) Override(o Limits) Limits {
	if o.Services > 0 {
		l.Services = o.Services
	}
	if o.Sessions > 0 {
		l.Sessions = o.Sessions
	}
	if o.Tasks > 0 {
		l.Tasks = o.Tasks
	}
	return l
}
