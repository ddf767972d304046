package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/solo-rt/solo/pkg/wire"
)

// Recover brings back services that are desired but not running (see
// solo.Runtime.Recover); with DryRun it only returns the plan.
func (c *Client) Recover(ctx context.Context, req wire.RecoverRequest) (wire.RecoverResult, error) {
	var res wire.RecoverResult
	if err := c.Do(ctx, http.MethodPost, "/v1/recover", req, &res); err != nil {
		return res, fmt.Errorf("recover: %w", err)
	}
	return res, nil
}

// Verify compares the log with the live processes; with fix it acts on the
// findings (see solo.Runtime.Verify).
func (c *Client) Verify(ctx context.Context, fix bool) (wire.VerifyReport, error) {
	var rep wire.VerifyReport
	if err := c.Do(ctx, http.MethodPost, "/v1/verify", wire.VerifyRequest{Fix: fix}, &rep); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	return rep, nil
}
