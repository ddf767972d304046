package capability

import (
	"errors"
	"fmt"
)

// Errors returned when parsing a plaintext token, by [Validate] and
// [Store.Authenticate]. Their text never contains the token.
var (
	// ErrMalformed is returned for text that cannot be a Solo token: a wrong
	// prefix, a wrong length, a character outside base62, or a random part
	// too large to have come from 32 bytes. No lookup is made.
	ErrMalformed = errors.New("malformed token")

	// ErrChecksum is returned when a well-formed token's checksum does not
	// match its random part: a typo or a truncated copy-paste. No lookup is
	// made.
	ErrChecksum = errors.New("token checksum mismatch")
)

// Errors returned by [Store.Authenticate] for a well-formed token.
var (
	// ErrUnknown is returned when no stored token has the presented
	// token's hash: it was never granted here, or it has been swept.
	ErrUnknown = errors.New("unknown token")

	// ErrExpired is returned when the clock reads at or after the token's
	// [Token.ExpiresAt]: a token is valid strictly before its expiry.
	ErrExpired = errors.New("token expired")

	// ErrRevoked is returned when the token has been revoked with
	// [Store.Revoke]. It takes precedence over [ErrExpired].
	ErrRevoked = errors.New("token revoked")

	// ErrNotSynced is returned by [EtcdStore.Authenticate] for every
	// token while the store cannot tell that its copy is current (its
	// watch of the cluster is broken or silent for longer than
	// [EtcdOptions.MaxStaleness]): it fails closed rather than accept a
	// token revoked elsewhere.
	ErrNotSynced = errors.New("token store not in sync with the cluster; try again")
)

// Errors returned by [Token.Allows].
var (
	// ErrWrongTenant is returned when the target tenant is not the token's
	// tenant. Tenants are hard boundaries, even for an admin token; an API
	// should answer "not found" rather than "forbidden", so that a token
	// cannot probe which tenants exist.
	ErrWrongTenant = errors.New("token is not valid for this tenant")

	// ErrWrongService is returned when the token's service pattern does not
	// match the target service. Like [ErrWrongTenant], an API should answer
	// "not found".
	ErrWrongService = errors.New("token is not valid for this service")

	// ErrScope is wrapped by [*ScopeError], returned when the token lacks
	// the scope an operation needs.
	ErrScope = errors.New("token lacks scope")
)

// Errors returned by [Store.Grant], [Store.Revoke] and [Open].
var (
	// ErrInvalid is returned for a request the store refuses, before
	// anything is written: a bad tenant name, no scope or an unknown scope,
	// a bad service pattern, a ttl that is negative or over
	// [Options.MaxTTL]. [Open] returns it for inconsistent [Options]. The
	// error text names the bad field and value.
	ErrInvalid = errors.New("invalid token request")

	// ErrNotFound is returned by [Store.Revoke] for an id that no stored
	// token has.
	ErrNotFound = errors.New("token not found")

	// ErrClosed is returned by every method of a [Store] after
	// [Store.Close].
	ErrClosed = errors.New("token store is closed")
)

// ScopeError tells which scope a token lacked. It wraps [ErrScope].
type ScopeError struct {
	TokenID string // id of the token that was refused
	Scope   Scope  // the scope the operation needs
}

func (e *ScopeError) Error() string {
	if e.TokenID == "" {
		return fmt.Sprintf("token lacks scope %q", string(e.Scope))
	}
	return fmt.Sprintf("token %s lacks scope %q", e.TokenID, string(e.Scope))
}

// Unwrap returns [ErrScope].
func (e *ScopeError) Unwrap() error { return ErrScope }
