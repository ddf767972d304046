package client_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/pkg/api"
	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

func TestClient_Tokens(t *testing.T) {
	ctx := context.Background()
	f := apitest.MustServe(t, apitest.Options{})
	c := f.Client(t, client.Options{}) // the local admin

	g, err := c.GrantToken(ctx, wire.TokenRequest{Tenant: "acme", Scopes: []string{"read", "logs"}, TTL: state.Duration(time.Hour), Services: "web-*"})
	require.NoError(t, err)
	require.NoError(t, capability.Validate(g.Token))
	assert.Equal(t, "acme", g.Tenant)
	assert.Equal(t, []string{"read", "logs"}, g.Scopes)
	assert.Equal(t, "web-*", g.Services)
	assert.Equal(t, api.LocalActor, g.Actor)
	assert.Equal(t, wire.TokenActive, g.State)
	assert.Equal(t, time.Hour, g.ExpiresAt.Sub(g.CreatedAt))

	d, err := c.GrantToken(ctx, wire.TokenRequest{Scopes: []string{"deploy"}})
	require.NoError(t, err)
	assert.Equal(t, state.DefaultTenant, d.Tenant, "the local admin grants in tenant default by default")
	assert.Equal(t, capability.DefaultTTL, d.ExpiresAt.Sub(d.CreatedAt))

	all, err := c.ListTokens(ctx, "")
	require.NoError(t, err)
	require.Len(t, all, 2)
	acme, err := c.ListTokens(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, acme, 1)
	assert.Equal(t, g.ID, acme[0].ID)

	v, err := c.RevokeToken(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, wire.TokenRevoked, v.State)
	assert.False(t, v.RevokedAt.IsZero())
	_, err = c.RevokeToken(ctx, g.ID)
	require.NoError(t, err, "revoking twice succeeds")

	_, err = c.RevokeToken(ctx, "01JZZZZZZZZZZZZZZZZZZZZZZZ")
	assert.True(t, client.IsNotFound(err), "%v", err)
	_, err = c.RevokeToken(ctx, d.Token)
	require.ErrorIs(t, err, client.ErrNotTokenID, "a plaintext is refused before it is sent")
	assert.NotContains(t, err.Error(), d.Token)

	_, err = c.GrantToken(ctx, wire.TokenRequest{Tenant: "acme", Scopes: []string{"root"}})
	assert.True(t, client.IsInvalid(err), "%v", err)
	_, err = c.GrantToken(ctx, wire.TokenRequest{Tenant: "acme", Scopes: []string{"read"}, TTL: state.Duration(365 * 24 * time.Hour)})
	assert.True(t, client.IsInvalid(err), "over the maximum ttl: %v", err)
}

func TestClient_IsThrottled(t *testing.T) {
	assert.True(t, client.IsThrottled(&client.APIError{Status: http.StatusTooManyRequests, Code: wire.CodeThrottled}))
	assert.False(t, client.IsThrottled(&client.APIError{Status: http.StatusUnauthorized}))
}
