package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/solo-rt/solo/eventstore/event"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// List returns the services of tenant ("" for every tenant the token may
// see), sorted by tenant and name. It never returns a nil slice without an
// error.
func (c *Client) List(ctx context.Context, tenant string) ([]state.ServiceView, error) {
	path := "/v1/services"
	if tenant != "" {
		path += "?" + url.Values{"tenant": {tenant}}.Encode()
	}
	views := []state.ServiceView{}
	if err := c.Do(ctx, http.MethodGet, path, nil, &views); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	if views == nil {
		views = []state.ServiceView{}
	}
	return views, nil
}

// Deploy makes spec the desired state of its service (see
// solo.Runtime.Deploy). Invalid specs return an [*APIError] with code
// invalid and the field named in APIError.Field; nothing is written.
func (c *Client) Deploy(ctx context.Context, spec state.Spec) (wire.DeployResult, error) {
	return c.DeployWait(ctx, spec, 0)
}

// DeployWait is [Client.Deploy] that also waits, up to wait, for the new
// generation's first attempt to start (see solo.Runtime.WaitStarted): the
// result's Started is set once it did, StartError says why it could not;
// neither if the wait ended first. A wait of 0 does not wait.
func (c *Client) DeployWait(ctx context.Context, spec state.Spec, wait time.Duration) (wire.DeployResult, error) {
	var res wire.DeployResult
	if err := c.Do(ctx, http.MethodPost, withWait("/v1/services", wait), spec, &res); err != nil {
		return res, fmt.Errorf("deploy %s: %w", spec.Name, err)
	}
	return res, nil
}

// withWait adds ?wait=DUR to path when wait is positive.
func withWait(path string, wait time.Duration) string {
	if wait <= 0 {
		return path
	}
	return path + "?" + url.Values{"wait": {wait.String()}}.Encode()
}

// Start makes a stopped, failed or ended service desired again with its
// last spec (see solo.Runtime.Start), and waits up to wait for its attempt
// to start, as [Client.DeployWait] does. [IsNotFound] tells a name never
// deployed, or removed.
func (c *Client) Start(ctx context.Context, tenant, name string, wait time.Duration) (wire.DeployResult, error) {
	return c.startAgain(ctx, "start", tenant, name, wait)
}

// Restart stops the service's instance with its stop procedure and starts a
// new attempt of the same spec (see solo.Runtime.Restart), waiting like
// [Client.Start].
func (c *Client) Restart(ctx context.Context, tenant, name string, wait time.Duration) (wire.DeployResult, error) {
	return c.startAgain(ctx, "restart", tenant, name, wait)
}

func (c *Client) startAgain(ctx context.Context, op, tenant, name string, wait time.Duration) (wire.DeployResult, error) {
	var res wire.DeployResult
	path, err := servicePath(tenant, name, "/"+op)
	if err != nil {
		return res, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.Do(ctx, http.MethodPost, withWait(path, wait), nil, &res); err != nil {
		return res, fmt.Errorf("%s: %w", op, err)
	}
	return res, nil
}

// Signal sends the signal sig (a name such as "HUP" or "SIGUSR1") to the
// process group of the service's running instance, after the daemon checked
// its identity (see solo.Runtime.Signal). An unknown name is an
// [*APIError] with code invalid and field "signal"; a service with no live
// process (stopped, or its recorded pid gone or reused) code conflict.
func (c *Client) Signal(ctx context.Context, tenant, name, sig string) (wire.SignalResult, error) {
	var res wire.SignalResult
	path, err := servicePath(tenant, name, "/signal")
	if err != nil {
		return res, fmt.Errorf("signal: %w", err)
	}
	if err := c.Do(ctx, http.MethodPost, path, wire.SignalRequest{Signal: sig}, &res); err != nil {
		return res, fmt.Errorf("signal: %w", err)
	}
	return res, nil
}

// Remove forgets a stopped service (see solo.Runtime.Remove): it is gone
// from List and Status and its name is free. A service that is not stopped
// is an [*APIError] with code conflict, and nothing is written.
func (c *Client) Remove(ctx context.Context, tenant, name string) error {
	path, err := servicePath(tenant, name, "/remove")
	if err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	var res wire.RemoveResult
	if err := c.Do(ctx, http.MethodPost, path, nil, &res); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	return nil
}

// Status returns one service; [IsNotFound] tells a service that does not
// exist.
func (c *Client) Status(ctx context.Context, tenant, name string) (state.ServiceStatus, error) {
	var view state.ServiceStatus
	path, err := servicePath(tenant, name, "")
	if err != nil {
		return view, fmt.Errorf("status: %w", err)
	}
	if err := c.Do(ctx, http.MethodGet, path, nil, &view); err != nil {
		return view, fmt.Errorf("status: %w", err)
	}
	return view, nil
}

// Why returns the recent story of a service in sentences derived from the
// log, oldest first: its last n sentences (0 for the daemon's default).
// [IsNotFound] tells a service that does not exist.
func (c *Client) Why(ctx context.Context, tenant, name string, n int) (wire.Story, error) {
	var story wire.Story
	path, err := servicePath(tenant, name, "/why")
	if err != nil {
		return story, fmt.Errorf("why: %w", err)
	}
	if n > 0 {
		path += "?" + url.Values{"lines": {strconv.Itoa(n)}}.Encode()
	}
	if err := c.Do(ctx, http.MethodGet, path, nil, &story); err != nil {
		return story, fmt.Errorf("why: %w", err)
	}
	return story, nil
}

// Kill stops a service for good (see solo.Runtime.Kill) and returns once it
// is down. Killing a killed service succeeds; [IsNotFound] tells one that
// was never deployed.
func (c *Client) Kill(ctx context.Context, tenant, name string) error {
	path, err := servicePath(tenant, name, "")
	if err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	var res wire.KillResult
	if err := c.Do(ctx, http.MethodDelete, path, nil, &res); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	return nil
}

// Logs copies the last tail lines of a service's log to w (0 for none, a
// negative number for the daemon's default of 100). With follow it then
// copies what the service writes next, until ctx ends (it returns an error
// wrapping ctx.Err()) or the daemon ends the stream (an error wrapping
// io.ErrUnexpectedEOF); without follow it is bounded by Options.Timeout.
func (c *Client) Logs(ctx context.Context, tenant, name string, tail int, follow bool, w io.Writer) error {
	return c.LogsSince(ctx, tenant, name, 0, tail, follow, w)
}

// LogsSince is [Client.Logs] from a time: with since > 0, only the lines
// written within the last since, the last tail of them if tail >= 0 (a
// negative tail: all of them). It needs a log with timestamps (a spec with
// log.timestamps); without, the daemon refuses with an [*APIError] whose
// Field is "since".
func (c *Client) LogsSince(ctx context.Context, tenant, name string, since time.Duration, tail int, follow bool, w io.Writer) error {
	path, err := servicePath(tenant, name, "/logs")
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	q := url.Values{}
	if tail >= 0 {
		q.Set("tail", strconv.Itoa(tail))
	}
	if since > 0 {
		q.Set("since", since.String())
	}
	if follow {
		q.Set("follow", "1")
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := c.send(ctx, http.MethodGet, path, nil, "text/plain")
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("logs: %w", c.fail(ctx, http.MethodGet, path, err))
	}
	if follow {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		return fmt.Errorf("logs: the daemon ended the stream: %w", io.ErrUnexpectedEOF)
	}
	return nil
}

// servicePath builds /v1/services/{tenant}/{name}{suffix}. Names are
// checked here with the daemon's rule, so that no name can turn into
// another path ("..").
func servicePath(tenant, name, suffix string) (string, error) {
	key, err := state.NewKey(tenant, name)
	if err != nil {
		return "", err
	}
	return "/v1/services/" + url.PathEscape(key.Tenant) + "/" + url.PathEscape(key.Name) + suffix, nil
}

// Events calls fn with every event from position from on (0 or 1 for the
// whole log), in order: up to the head of the log as of the call, or, with
// follow, then live until ctx ends (it returns an error wrapping
// ctx.Err()) or the daemon
// ends the stream (an error wrapping io.ErrUnexpectedEOF). An error from fn
// stops the stream and is returned as is.
func (c *Client) Events(ctx context.Context, from uint64, follow bool, fn func(event.Envelope) error) error {
	return c.EventsOf(ctx, EventsQuery{From: from, Follow: follow}, fn)
}

// EventsQuery says which events [Client.EventsOf] streams.
type EventsQuery struct {
	// From is the first position (0 or 1 for the whole log).
	From uint64
	// Follow keeps the stream open for new events.
	Follow bool
	// Tenant keeps only that tenant's events; Service only that
	// service's (in Tenant, or the token's tenant, or the default one).
	// The daemon filters, so a service's history is read through its
	// stream index, not the whole log.
	Tenant, Service string
}

// EventsOf is [Client.Events] with a filter: see [EventsQuery].
func (c *Client) EventsOf(ctx context.Context, eq EventsQuery, fn func(event.Envelope) error) error {
	from, follow := eq.From, eq.Follow
	q := url.Values{}
	if from > 0 {
		q.Set("from", strconv.FormatUint(from, 10))
	}
	if follow {
		q.Set("follow", "1")
	}
	if eq.Tenant != "" {
		q.Set("tenant", eq.Tenant)
	}
	if eq.Service != "" {
		q.Set("service", eq.Service)
	}
	path := "/v1/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := c.send(ctx, http.MethodGet, path, nil, wire.ContentTypeNDJSON)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var env event.Envelope
		err := dec.Decode(&env)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) && !follow:
			return nil
		case errors.Is(err, io.EOF):
			return fmt.Errorf("events: the daemon ended the stream: %w", io.ErrUnexpectedEOF)
		default:
			return fmt.Errorf("events: %w", c.fail(ctx, http.MethodGet, path, err))
		}
		if err := fn(env); err != nil {
			return err
		}
	}
}

// DBCheck runs the daemon's full check of its event log. A damaged log
// returns an [*APIError] with code corrupt and the findings in Problems. It
// is not bounded by Options.Timeout: a large log takes a while.
func (c *Client) DBCheck(ctx context.Context) (wire.CheckReport, error) {
	var rep wire.CheckReport
	if err := c.do(ctx, http.MethodGet, "/v1/db/check", nil, &rep); err != nil {
		return rep, fmt.Errorf("db check: %w", err)
	}
	return rep, nil
}

// DBBackup writes a consistent copy of the daemon's database to w and
// returns the bytes written. A copy cut short returns an error. It is not
// bounded by Options.Timeout.
func (c *Client) DBBackup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, http.MethodGet, "/v1/db/backup", nil, wire.ContentTypeBackup)
	if err != nil {
		return 0, fmt.Errorf("db backup: %w", err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("db backup: %w", c.fail(ctx, http.MethodGet, "/v1/db/backup", err))
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("db backup: cut short: %d of %d bytes", n, resp.ContentLength)
	}
	return n, nil
}

// Health returns nil if the daemon answers /healthz.
func (c *Client) Health(ctx context.Context) error {
	if err := c.Do(ctx, http.MethodGet, "/healthz", nil, nil); err != nil {
		return fmt.Errorf("health: %w", err)
	}
	return nil
}

// Ready returns nil once the daemon has finished recovery; before, an
// [*APIError] with status 503 and code unavailable.
func (c *Client) Ready(ctx context.Context) error {
	if err := c.Do(ctx, http.MethodGet, "/readyz", nil, nil); err != nil {
		return fmt.Errorf("ready: %w", err)
	}
	return nil
}
