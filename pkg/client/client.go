package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/solo-rt/solo/pkg/wire"
)

// Defaults for [Options].
const (
	// DefaultTimeout bounds each call that returns one reply (everything
	// but the streams: Logs with follow, Events, DBBackup, DBCheck).
	DefaultTimeout = 30 * time.Second
	// DefaultDialTimeout bounds connecting to the daemon; a dial that takes
	// longer fails with [ErrUnreachable]. A smaller Options.Timeout lowers it.
	DefaultDialTimeout = 5 * time.Second
)

// maxErrorBody bounds how much of an error reply is read.
const maxErrorBody = 1 << 20

// Options configure [New]. Socket or Addr is required.
type Options struct {
	// Socket is the path of the daemon's unix socket.
	Socket string
	// Addr is the daemon's TCP address: "host:port", or a URL
	// "http://host:port" or "https://host:port". It takes precedence over
	// Socket if both are set.
	Addr string
	// Token is sent as "Authorization: Bearer <Token>" with every request;
	// "" sends none. It never appears in an error.
	Token string
	// Timeout bounds each call that returns one reply, from dial to the
	// last byte. Default DefaultTimeout.
	Timeout time.Duration
}

// Client talks to a Solo daemon. It is safe for concurrent use and keeps
// connections open between calls; [Client.Close] releases them.
type Client struct {
	http    *http.Client
	base    string // scheme://host[/prefix], no trailing slash
	target  string // "socket PATH" or "address ADDR", for errors
	token   string
	timeout time.Duration
}

// New returns a client for the daemon at opts.Addr or opts.Socket. It does
// not connect: an unreachable daemon is reported by the first call.
func New(opts Options) (*Client, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	c := &Client{token: opts.Token, timeout: opts.Timeout}
	d := &net.Dialer{Timeout: min(DefaultDialTimeout, opts.Timeout), KeepAlive: 30 * time.Second}
	var dial func(ctx context.Context, addr string) (net.Conn, error)
	switch {
	case opts.Addr != "":
		base, err := baseURL(opts.Addr)
		if err != nil {
			return nil, err
		}
		c.base, c.target = base, "address "+opts.Addr
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	case opts.Socket != "":
		c.base, c.target = "http://solo", "socket "+opts.Socket
		dial = func(ctx context.Context, _ string) (net.Conn, error) { return d.DialContext(ctx, "unix", opts.Socket) }
	default:
		return nil, errors.New("new client: Options.Socket or Options.Addr is required")
	}
	tr := &http.Transport{
		// Never through an HTTP proxy from the environment: the daemon is
		// local, or named explicitly.
		Proxy: nil,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			conn, err := dial(ctx, addr)
			if err != nil && ctx.Err() == nil {
				return nil, fmt.Errorf("%w (%s): %w", ErrUnreachable, c.target, err)
			}
			return conn, err
		},
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	c.http = &http.Client{
		Transport: tr,
		// The API never redirects; following one would resend the token
		// to wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// baseURL turns an Addr into the base of request URLs.
func baseURL(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", fmt.Errorf("new client: address %q: %w", addr, err)
		}
		return "http://" + addr, nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("new client: address: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("new client: address %q: want host:port, http://host:port or https://host:port", addr)
	}
	return u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// Close releases idle connections. The client stays usable.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// Do sends one request and decodes its JSON reply: the building block of
// every other method, for endpoints this package does not wrap yet. path is
// absolute and may carry a query ("/v1/services?tenant=a"). in, if not nil,
// is sent as the JSON body; out, if not nil, receives the JSON reply. A
// reply with a status of 400 or more returns an [*APIError]; a daemon that
// cannot be reached returns an error wrapping [ErrUnreachable]. The call is
// bounded by Options.Timeout.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.do(ctx, method, path, in, out)
}

// do is Do without the timeout.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in, wire.ContentTypeJSON)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return c.fail(ctx, method, path, fmt.Errorf("decode reply: %w", err))
	}
	return nil
}

// send sends a request and returns a reply with a status under 400; the
// caller closes its body. Any other reply becomes an [*APIError].
func (c *Client) send(ctx context.Context, method, path string, in any, accept string) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", wire.ContentTypeJSON)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.fail(ctx, method, path, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	return resp, nil
}

// fail wraps a transport error; the caller's own cancellation wins over
// whatever the transport made of it.
func (c *Client) fail(ctx context.Context, method, path string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its text repeats the URL, which says nothing useful for a socket
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ErrUnreachable) {
		return fmt.Errorf("%s %s: %w", method, path, ctxErr)
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}

// readAPIError reads an error reply. A body that is not a wire.ErrorBody
// (a proxy's page, say) becomes the message, with the code of its status.
func readAPIError(resp *http.Response) *APIError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var eb wire.ErrorBody
	retry := retryAfter(resp.Header.Get("Retry-After"))
	if err := json.Unmarshal(b, &eb); err == nil && eb.Code != "" {
		return &APIError{Status: resp.StatusCode, Code: eb.Code, Message: eb.Error, Field: eb.Field, Problems: eb.Problems, Limit: eb.Limit, RetryAfter: retry}
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = resp.Status
	}
	return &APIError{Status: resp.StatusCode, Code: codeOf(resp.StatusCode), Message: msg, RetryAfter: retry}
}

// retryAfter reads a Retry-After header in seconds (the only form the
// daemon sends); 0 if absent or in another form.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// codeOf is the code of a status, for replies that carry none.
func codeOf(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed:
		return wire.CodeInvalid
	case http.StatusUnauthorized:
		return wire.CodeUnauthorized
	case http.StatusForbidden:
		return wire.CodeDenied
	case http.StatusNotFound:
		return wire.CodeNotFound
	case http.StatusConflict:
		return wire.CodeConflict
	case http.StatusRequestEntityTooLarge:
		return wire.CodeTooLarge
	case http.StatusTooManyRequests:
		return wire.CodeLimited
	case http.StatusServiceUnavailable:
		return wire.CodeUnavailable
	}
	return wire.CodeInternal
}
