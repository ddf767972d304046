package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/solo-rt/solo/pkg/wire"
)

// SetTenant changes the policy of tenant: the fields of req that are not
// nil. Only the local admin may.
func (c *Client) SetTenant(ctx context.Context, tenant string, req wire.TenantSetRequest) (wire.TenantView, error) {
	var res wire.TenantView
	if err := c.Do(ctx, http.MethodPut, "/v1/tenants/"+url.PathEscape(tenant), req, &res); err != nil {
		return res, fmt.Errorf("tenant set: %w", err)
	}
	return res, nil
}

// Tenant returns tenant's policy and dynamic user.
func (c *Client) Tenant(ctx context.Context, tenant string) (wire.TenantView, error) {
	var res wire.TenantView
	if err := c.Do(ctx, http.MethodGet, "/v1/tenants/"+url.PathEscape(tenant), nil, &res); err != nil {
		return res, fmt.Errorf("tenant show: %w", err)
	}
	return res, nil
}

// Tenants returns every tenant with a policy or a dynamic user.
func (c *Client) Tenants(ctx context.Context) ([]wire.TenantView, error) {
	views := []wire.TenantView{}
	if err := c.Do(ctx, http.MethodGet, "/v1/tenants", nil, &views); err != nil {
		return nil, fmt.Errorf("tenant ls: %w", err)
	}
	if views == nil {
		views = []wire.TenantView{}
	}
	return views, nil
}
