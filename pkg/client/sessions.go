package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// sessionPath builds /v1/sessions/{tenant}/{name}{suffix}, names checked
// like servicePath.
func sessionPath(tenant, name, suffix string) (string, error) {
	p, err := servicePath(tenant, name, suffix)
	if err != nil {
		return "", err
	}
	return "/v1/sessions/" + p[len("/v1/services/"):], nil
}

// taskPath builds /v1/tasks/{id}{suffix}.
func taskPath(id, suffix string) string { return "/v1/tasks/" + url.PathEscape(id) + suffix }

// CreateSession makes a kernel session (see session.Manager.Create).
func (c *Client) CreateSession(ctx context.Context, req wire.CreateSessionRequest) (wire.SessionView, error) {
	var v wire.SessionView
	if err := c.Do(ctx, http.MethodPost, "/v1/sessions", req, &v); err != nil {
		return v, fmt.Errorf("create session %s: %w", req.Name, err)
	}
	return v, nil
}

// Sessions lists the live sessions of tenant ("" for all it may see).
func (c *Client) Sessions(ctx context.Context, tenant string) ([]wire.SessionView, error) {
	path := "/v1/sessions"
	if tenant != "" {
		path += "?" + url.Values{"tenant": {tenant}}.Encode()
	}
	vs := []wire.SessionView{}
	if err := c.Do(ctx, http.MethodGet, path, nil, &vs); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return vs, nil
}

// Session returns one session; [IsNotFound] tells one that does not exist.
func (c *Client) Session(ctx context.Context, tenant, name string) (wire.SessionView, error) {
	var v wire.SessionView
	path, err := sessionPath(tenant, name, "")
	if err != nil {
		return v, fmt.Errorf("session: %w", err)
	}
	if err := c.Do(ctx, http.MethodGet, path, nil, &v); err != nil {
		return v, fmt.Errorf("session: %w", err)
	}
	return v, nil
}

// RestartSession runs a lost session (its node died) again, empty, on the
// node the client talks to (see session.Manager.Restart).
func (c *Client) RestartSession(ctx context.Context, tenant, name string, req wire.RestartSessionRequest) (wire.SessionView, error) {
	var v wire.SessionView
	path, err := sessionPath(tenant, name, "/restart")
	if err != nil {
		return v, fmt.Errorf("restart session: %w", err)
	}
	if err := c.Do(ctx, http.MethodPost, path, req, &v); err != nil {
		return v, fmt.Errorf("restart session: %w", err)
	}
	return v, nil
}

// RemoveSession removes a session and stops its kernel.
func (c *Client) RemoveSession(ctx context.Context, tenant, name string) error {
	path, err := sessionPath(tenant, name, "")
	if err != nil {
		return fmt.Errorf("remove session: %w", err)
	}
	if err := c.Do(ctx, http.MethodDelete, path, nil, nil); err != nil {
		return fmt.Errorf("remove session: %w", err)
	}
	return nil
}

// Submit queues a task on a session and returns it once task_submitted is
// durable; with wait, once the task ended (then only ctx bounds the call).
func (c *Client) Submit(ctx context.Context, tenant, name string, req wire.SubmitRequest, wait bool) (*state.Task, error) {
	path, err := sessionPath(tenant, name, "/tasks")
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	var t state.Task
	if wait {
		err = c.do(ctx, http.MethodPost, path+"?wait=1", req, &t)
	} else {
		err = c.Do(ctx, http.MethodPost, path, req, &t)
	}
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	return &t, nil
}

// Task returns a task; with wait, once it ended (then only ctx bounds the
// call).
func (c *Client) Task(ctx context.Context, id string, wait bool) (*state.Task, error) {
	var t state.Task
	var err error
	if wait {
		err = c.do(ctx, http.MethodGet, taskPath(id, "?wait=1"), nil, &t)
	} else {
		err = c.Do(ctx, http.MethodGet, taskPath(id, ""), nil, &t)
	}
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", id, err)
	}
	return &t, nil
}

// CancelTask cancels a task: a pending one never runs, a running one is
// interrupted.
func (c *Client) CancelTask(ctx context.Context, id string) (*state.Task, error) {
	var t state.Task
	if err := c.Do(ctx, http.MethodPost, taskPath(id, "/cancel"), nil, &t); err != nil {
		return nil, fmt.Errorf("cancel task %s: %w", id, err)
	}
	return &t, nil
}

// TaskOutput copies a task's outputs, as text, to w; with follow until the
// task ends (only ctx bounds it then).
func (c *Client) TaskOutput(ctx context.Context, id string, follow bool, w io.Writer) error {
	path := taskPath(id, "/output")
	if follow {
		path += "?follow=1"
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	resp, err := c.send(ctx, http.MethodGet, path, nil, "text/plain")
	if err != nil {
		return fmt.Errorf("task output: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("task output: %w", c.fail(ctx, http.MethodGet, path, err))
	}
	return nil
}

// Assets lists a session's assets (task outputs and marked files, with
// their leases); listing renews the leases. [IsNotFound] tells a session
// that does not exist.
func (c *Client) Assets(ctx context.Context, tenant, name string) ([]wire.AssetView, error) {
	path, err := sessionPath(tenant, name, "/assets")
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	vs := []wire.AssetView{}
	if err := c.Do(ctx, http.MethodGet, path, nil, &vs); err != nil {
		return nil, fmt.Errorf("assets of %s: %w", name, err)
	}
	return vs, nil
}

// AddAsset keeps a regular file of a session's directory as an asset,
// under a lease; path is relative to that directory. A path that is
// absolute or escapes the directory is refused, and nothing is recorded.
func (c *Client) AddAsset(ctx context.Context, tenant, name, path string) (wire.AssetView, error) {
	var v wire.AssetView
	p, err := sessionPath(tenant, name, "/assets")
	if err != nil {
		return v, fmt.Errorf("add asset: %w", err)
	}
	if err := c.Do(ctx, http.MethodPost, p, wire.AddAssetRequest{Path: path}, &v); err != nil {
		return v, fmt.Errorf("add asset to %s: %w", name, err)
	}
	return v, nil
}
