package client

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// Apply sends a declarative set of services (see solo.Runtime.Apply) and
// returns the plan and what was done. A bad entry returns an [*APIError]
// with code invalid and APIError.Field naming the entry and field, such as
// "services[3].command"; nothing is written then. With req.DryRun the plan
// is returned and nothing is written.
func (c *Client) Apply(ctx context.Context, req wire.ApplyRequest) (wire.ApplyResult, error) {
	return c.ApplyWait(ctx, req, 0)
}

// ApplyWait is [Client.Apply] that also waits, up to wait for all, for the
// first attempt of each service it creates or updates to start; each
// item's Started or StartError says how it went (see [Client.DeployWait]).
func (c *Client) ApplyWait(ctx context.Context, req wire.ApplyRequest, wait time.Duration) (wire.ApplyResult, error) {
	var res wire.ApplyResult
	if req.Services == nil {
		req.Services = []state.Spec{}
	}
	if err := c.Do(ctx, http.MethodPost, withWait("/v1/apply", wait), req, &res); err != nil {
		return res, fmt.Errorf("apply: %w", err)
	}
	return res, nil
}
