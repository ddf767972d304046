package witness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Client asks a witness over HTTP.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the witness whose HTTP address is addr
// ([Addrs.HTTP]).
func NewClient(addr string) *Client {
	return &Client{base: "http://" + addr, hc: &http.Client{}}
}

// State returns the witness's verdict now.
func (c *Client) State(ctx context.Context) (State, error) {
	return c.state(ctx, "")
}

// Wait returns the first state for which cond holds, checking at each
// change of the witness's state (and at least once a window), or ctx's
// error with the last state seen.
func (c *Client) Wait(ctx context.Context, cond func(State) bool) (State, error) {
	st, err := c.state(ctx, "")
	for err == nil && !cond(st) {
		st, err = c.state(ctx, "?after="+strconv.FormatUint(st.Version, 10))
	}
	return st, err
}

func (c *Client) state(ctx context.Context, query string) (State, error) {
	var st State
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/state"+query, nil)
	if err != nil {
		return st, err
	}
	return st, c.do(req, &st)
}

// MarkDead declares instances dead ([Dead]) as of now, and returns how
// many it marked.
func (c *Client) MarkDead(ctx context.Context, d Dead) (int, error) {
	body, _ := json.Marshal(d)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/dead", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	var out struct {
		Marked int `json:"marked"`
	}
	return out.Marked, c.do(req, &out)
}

func (c *Client) do(req *http.Request, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("witness: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("witness: %s %s: %s: %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(msg))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
