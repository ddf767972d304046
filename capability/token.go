package capability

import (
	"fmt"
	"path"
	"slices"
	"time"
)

// Token is what the store knows about a capability token. It never holds
// the plaintext or its hash, so it is safe to log, list and put in events.
type Token struct {
	ID        string    // ULID, public: used to list and revoke
	Tenant    string    // the only tenant the token acts on
	Scopes    []Scope   // canonical order, no duplicates
	Services  string    // path.Match pattern over service names; "" means all
	Actor     string    // who granted it: a token id or "local"
	CreatedAt time.Time // UTC
	ExpiresAt time.Time // UTC; valid strictly before this instant
	RevokedAt time.Time // UTC; zero unless revoked
}

// Revoked reports whether the token has been revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// Expired reports whether the token is expired at now: at ExpiresAt exactly,
// it is.
func (t Token) Expired(now time.Time) bool { return !now.Before(t.ExpiresAt) }

// Has reports whether the token carries scope s, or [ScopeAdmin].
func (t Token) Has(s Scope) bool {
	return slices.Contains(t.Scopes, ScopeAdmin) || slices.Contains(t.Scopes, s)
}

// MatchService reports whether the token's service pattern admits service.
// An API that lists services for a pattern-bound token filters with it.
func (t Token) MatchService(service string) bool {
	if t.Services == "" {
		return true
	}
	ok, err := path.Match(t.Services, service)
	return err == nil && ok
}

// Allows says whether the token may perform an operation that needs scope
// on service in tenant. It is a pure function of the token: it does not
// look at expiry or revocation, which [Store.Authenticate] has checked.
//
// The checks run in this order, and the first failure is returned:
//
//   - tenant must equal the token's tenant, else [ErrWrongTenant]. Tenants
//     are hard boundaries: an admin token of tenant "default" has no power
//     over any other tenant. (The owner of the unix socket is a separate
//     "local" principal, handled by the API layer, not by a token.)
//   - service must match the token's pattern, else [ErrWrongService]. An
//     empty service means an operation on no single service, such as a
//     listing; it is allowed, and the caller filters what it returns with
//     [Token.MatchService].
//   - the token must carry scope, or [ScopeAdmin], else a [*ScopeError]
//     naming the scope. An unknown scope is a programming error and gets
//     [ErrInvalid].
func (t Token) Allows(scope Scope, tenant, service string) error {
	if !scope.Valid() {
		return fmt.Errorf("%w: unknown scope %q", ErrInvalid, string(scope))
	}
	if tenant != t.Tenant {
		return ErrWrongTenant
	}
	if service != "" && !t.MatchService(service) {
		return ErrWrongService
	}
	if !t.Has(scope) {
		return &ScopeError{TokenID: t.ID, Scope: scope}
	}
	return nil
}

// validName is the rule for tenant (and service) names:
// ^[a-z0-9][a-z0-9._-]{0,62}$.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}
