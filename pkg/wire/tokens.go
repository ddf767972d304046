package wire

import (
	"time"

	"github.com/solo-rt/solo/pkg/state"
)

// TokenPrefix starts every plaintext token (it is the token store's
// format, kept equal to it by a test of package api). No token id starts
// with it, so a client can tell a secret pasted by mistake from an id and
// refuse to send it in a URL.
const TokenPrefix = "solo_"

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	// Tenant the token acts in. "" means the caller's own tenant, or
	// "default" for the local admin. A token may grant only in its own
	// tenant.
	Tenant string `json:"tenant,omitempty"`
	// Scopes, at least one of read, logs, deploy, kill, admin.
	Scopes []string `json:"scopes"`
	// TTL is how long the token lives: a duration string ("12h") or
	// integer nanoseconds. 0 means the daemon's default (24h, or its
	// maximum if that is shorter); more than the maximum is refused. A
	// token granted by a token may not outlive its granter.
	TTL state.Duration `json:"ttl,omitempty"`
	// Services, if set, is a path.Match pattern ("web-*"): the token acts
	// only on services whose name matches.
	Services string `json:"services,omitempty"`
}

// TokenView is a token as GET /v1/tokens lists it. It never holds the
// plaintext.
type TokenView struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Scopes    []string  `json:"scopes"`
	Services  string    `json:"services,omitempty"`
	Actor     string    `json:"actor"` // who granted it: a token id or "local"
	State     string    `json:"state"` // active, expired or revoked
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Token states of a [TokenView].
const (
	TokenActive  = "active"
	TokenExpired = "expired"
	TokenRevoked = "revoked"
)

// TokenGrant is the reply of POST /v1/tokens: the token and, this once,
// its plaintext.
type TokenGrant struct {
	// Token is the plaintext: it is shown here once and stored nowhere.
	Token string `json:"token"`
	TokenView
}
