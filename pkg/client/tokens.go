package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/solo-rt/solo/pkg/wire"
)

// GrantToken asks the daemon for a new token. The reply's Token is the
// plaintext, returned this once: the daemon keeps only its hash. The
// caller needs an admin token (or the local socket); a token may grant
// only in its own tenant, and not for longer than it lives itself.
func (c *Client) GrantToken(ctx context.Context, req wire.TokenRequest) (wire.TokenGrant, error) {
	var res wire.TokenGrant
	if err := c.Do(ctx, http.MethodPost, "/v1/tokens", req, &res); err != nil {
		return res, fmt.Errorf("grant token: %w", err)
	}
	return res, nil
}

// ListTokens returns the tokens of tenant ("" for every tenant the caller
// may see), revoked and expired ones included until the daemon deletes
// them. No plaintext is ever listed.
func (c *Client) ListTokens(ctx context.Context, tenant string) ([]wire.TokenView, error) {
	path := "/v1/tokens"
	if tenant != "" {
		path += "?" + url.Values{"tenant": {tenant}}.Encode()
	}
	views := []wire.TokenView{}
	if err := c.Do(ctx, http.MethodGet, path, nil, &views); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	if views == nil {
		views = []wire.TokenView{}
	}
	return views, nil
}

// ErrNotTokenID is returned by [Client.RevokeToken], before anything is
// sent, when it is given a token's plaintext instead of its id: a secret
// must not travel in a URL, nor come back in an error.
var ErrNotTokenID = errors.New("that is a token, not a token id: revoke by id (see solo token ls)")

// RevokeToken revokes the token with id at once. Revoking a revoked token
// succeeds; [IsNotFound] tells an id the caller cannot see.
func (c *Client) RevokeToken(ctx context.Context, id string) (wire.TokenView, error) {
	var res wire.TokenView
	if strings.HasPrefix(id, wire.TokenPrefix) {
		return res, fmt.Errorf("revoke token: %w", ErrNotTokenID)
	}
	if err := c.Do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, &res); err != nil {
		return res, fmt.Errorf("revoke token: %w", err)
	}
	return res, nil
}

// IsThrottled reports whether err is a 429 reply: the source failed to
// authenticate too often and must wait (the message says how long).
func IsThrottled(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests
}
