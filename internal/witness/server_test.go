package witness

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startServer runs a witness in this process, stopped when t ends.
func startServer(t *testing.T) (*Server, *Client) {
	t.Helper()
	s, err := Listen("127.0.0.1", nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return s, NewClient(s.Addrs().HTTP)
}

func TestServer_ReportsAndQueries(t *testing.T) {
	s, c := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	sctx, stop := context.WithCancel(ctx)
	sent := make(chan error, 2)
	go func() {
		sent <- Send(sctx, s.Addrs().Report, Report{Service: "default/web", Node: "n1", PID: 101, Fence: 3}, 10*time.Millisecond)
	}()
	st, err := c.Wait(ctx, func(st State) bool {
		return st.Services["default/web"].Instances != nil && st.Services["default/web"].Instances[0].Reports >= 3
	})
	require.NoError(t, err)
	ss := st.Services["default/web"]
	assert.Equal(t, 1, ss.MaxLive)
	require.Len(t, ss.Live, 1)
	assert.Equal(t, Instance{Node: "n1", PID: 101, Fence: 3}, Instance{Node: ss.Live[0].Node, PID: ss.Live[0].PID, Fence: ss.Live[0].Fence})

	// A second instance while the first reports: two at once.
	go func() {
		sent <- Send(sctx, s.Addrs().Report, Report{Service: "default/web", Node: "n2", PID: 202, Fence: 4}, 10*time.Millisecond)
	}()
	st, err = c.Wait(ctx, func(st State) bool { return st.Services["default/web"].MaxLive == 2 })
	require.NoError(t, err)
	assert.NotEmpty(t, st.Services["default/web"].Overlaps)

	n, err := c.MarkDead(ctx, Dead{Node: "n1"})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	stop()
	require.NoError(t, <-sent)
	require.NoError(t, <-sent)
}

func TestServer_BadInput(t *testing.T) {
	s, c := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := c.MarkDead(ctx, Dead{})
	require.ErrorContains(t, err, "dead needs a node or a pid")

	resp, err := http.Get("http://" + s.Addrs().HTTP + "/state?after=x")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	resp, err = http.Post("http://"+s.Addrs().HTTP+"/dead", "application/json", strings.NewReader("{"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// A datagram that is not a report is counted, and recorded nowhere.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go Send(sctx, s.Addrs().Report, Report{Service: "", PID: 1}, 10*time.Millisecond)
	st, err := c.Wait(ctx, func(st State) bool { return st.Malformed > 0 })
	require.NoError(t, err)
	assert.Empty(t, st.Services)
}
