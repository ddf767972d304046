package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

func secretPath(tenant, name string) string {
	if tenant == "" {
		tenant = state.DefaultTenant
	}
	return "/v1/secrets/" + url.PathEscape(tenant) + "/" + url.PathEscape(name)
}

// SetSecret stores value as the next version of tenant's secret name ("",
// the default tenant). The value travels in the request body only. With
// restartUsers, the services that use the secret are restarted.
func (c *Client) SetSecret(ctx context.Context, tenant, name string, value []byte, restartUsers bool) (wire.SecretSetReply, error) {
	var res wire.SecretSetReply
	req := wire.SecretSetRequest{Value: value, RestartUsers: restartUsers}
	if err := c.Do(ctx, http.MethodPut, secretPath(tenant, name), req, &res); err != nil {
		return res, fmt.Errorf("secret set: %w", err)
	}
	return res, nil
}

// ListSecrets returns the secrets of tenant ("" for the caller's), never
// their values.
func (c *Client) ListSecrets(ctx context.Context, tenant string) ([]wire.SecretView, error) {
	path := "/v1/secrets"
	if tenant != "" {
		path += "?" + url.Values{"tenant": {tenant}}.Encode()
	}
	views := []wire.SecretView{}
	if err := c.Do(ctx, http.MethodGet, path, nil, &views); err != nil {
		return nil, fmt.Errorf("secret ls: %w", err)
	}
	if views == nil {
		views = []wire.SecretView{}
	}
	return views, nil
}

// RemoveSecret removes tenant's secret name.
func (c *Client) RemoveSecret(ctx context.Context, tenant, name string) (wire.SecretView, error) {
	var res wire.SecretView
	if err := c.Do(ctx, http.MethodDelete, secretPath(tenant, name), nil, &res); err != nil {
		return res, fmt.Errorf("secret rm: %w", err)
	}
	return res, nil
}
