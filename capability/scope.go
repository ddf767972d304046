package capability

import (
	"fmt"
	"strings"
)

// Scope is one permission a token carries.
type Scope string

// The scopes, from weakest to strongest. [ScopeAdmin] implies every other.
const (
	ScopeRead   Scope = "read"   // list and inspect services, read events
	ScopeLogs   Scope = "logs"   // read service logs
	ScopeDeploy Scope = "deploy" // deploy and apply services
	ScopeKill   Scope = "kill"   // kill services
	ScopeAdmin  Scope = "admin"  // everything in the tenant, tokens included
	// ScopeSecrets sets, lists and removes the tenant's secrets (never
	// reads a value back). It is last in the canonical order, after admin,
	// so that the stored bits of older tokens keep their meaning.
	ScopeSecrets Scope = "secrets"
)

// allScopes is the canonical order: bit i of a scopeSet is allScopes[i].
// Append only: the bits are stored.
var allScopes = [...]Scope{ScopeRead, ScopeLogs, ScopeDeploy, ScopeKill, ScopeAdmin, ScopeSecrets}

// Scopes returns every scope, in canonical order.
func Scopes() []Scope { return append([]Scope(nil), allScopes[:]...) }

// Valid reports whether s is one of the defined scopes.
func (s Scope) Valid() bool { return s.bit() != 0 }

func (s Scope) bit() scopeSet {
	for i, v := range allScopes {
		if v == s {
			return 1 << i
		}
	}
	return 0
}

// ParseScope parses one scope name. The error wraps [ErrInvalid] and names
// the bad scope.
func ParseScope(s string) (Scope, error) {
	if sc := Scope(s); sc.Valid() {
		return sc, nil
	}
	return "", fmt.Errorf("%w: unknown scope %q (want one of read, logs, deploy, kill, admin, secrets)", ErrInvalid, s)
}

// ParseScopes parses a comma-separated list such as "read,logs", as the
// CLI's --scope flag takes it. Blanks around names are ignored; an empty
// list is an error.
func ParseScopes(list string) ([]Scope, error) {
	var out []Scope
	for f := range strings.SplitSeq(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		sc, err := ParseScope(f)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no scope given", ErrInvalid)
	}
	return out, nil
}

// scopeSet is a bit set of scopes: the stored and in-memory form.
type scopeSet uint8

const allScopeBits = scopeSet(1<<len(allScopes) - 1)

// scopeSlices holds one canonical, shared slice per set, so that a restore
// does not allocate one per token. Never hand these out: copy them.
var scopeSlices = func() (t [allScopeBits + 1][]Scope) {
	for set := range t {
		for i, sc := range allScopes {
			if set&(1<<i) != 0 {
				t[set] = append(t[set], sc)
			}
		}
	}
	return t
}()

func (set scopeSet) has(s Scope) bool { return set&s.bit() != 0 }
