package etcdtest

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestRaftSender(t *testing.T) {
	req := func(h map[string]string) *bufio.Reader {
		r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/raft/stream/message/1", nil)
		require.NoError(t, err)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		var b bytes.Buffer
		require.NoError(t, r.Write(&b))
		return bufio.NewReader(&b)
	}
	r := req(map[string]string{"X-Server-From": "8e9e05c52164694d", "X-Raft-To": "1"})
	assert.Equal(t, "8e9e05c52164694d", RaftSender(r))
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "GET /raft/stream/message/1 HTTP/1.1\r\n", line, "only peeked")

	assert.Equal(t, "", RaftSender(req(nil)), "a request of no member")
	assert.Equal(t, "", RaftSender(bufio.NewReader(bytes.NewReader([]byte("SSH-2.0\r\n")))), "not HTTP, and it ends")
}

// until runs op with a short deadline until it succeeds or ctx ends.
func until(ctx context.Context, op func(context.Context) error) error {
	for {
		octx, cancel := context.WithTimeout(ctx, time.Second)
		err := op(octx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
}

func TestCluster_Isolate(t *testing.T) {
	c := Start(t, 3, Options{NoFsync: true, Proxied: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := c.Client(t).Put(ctx, "k", "before")
	require.NoError(t, err)

	// The ids the proxies cut by are the ones the member list tells
	// (what a test of members in other processes has).
	learned := &Peers{Proxies: c.Peers.Proxies}
	require.NoError(t, learned.Learn(ctx, c.Client(t)))
	assert.Equal(t, c.Peers.IDs, learned.IDs)

	lead := c.Leader()
	require.GreaterOrEqual(t, lead, 0)
	other := (lead + 1) % 3
	cut := NewClient(t, c.Members[lead].ClientURL)
	// The isolated member has "before" before it is cut off.
	require.NoError(t, until(ctx, func(ctx context.Context) error {
		_, err := cut.Get(ctx, "k")
		return err
	}))
	c.Isolate(lead)

	// The other two elect a leader and commit without it.
	require.NoError(t, until(ctx, func(ctx context.Context) error {
		_, err := NewClient(t, c.Members[other].ClientURL).Put(ctx, "k", "during")
		return err
	}))
	// The isolated member runs, but cannot serve a linearizable read, and
	// has not seen the write.
	short, stop := context.WithTimeout(ctx, 2*time.Second)
	_, err = cut.Get(short, "k")
	stop()
	require.Error(t, err, "a linearizable read without a quorum")
	resp, err := cut.Get(ctx, "k", clientv3.WithSerializable())
	require.NoError(t, err)
	assert.Equal(t, "before", string(resp.Kvs[0].Value))

	// Healed, it catches up.
	c.Heal(lead)
	require.NoError(t, until(ctx, func(ctx context.Context) error {
		resp, err := cut.Get(ctx, "k")
		if err == nil && string(resp.Kvs[0].Value) != "during" {
			err = context.DeadlineExceeded // not yet: the read is linearizable, so this does not happen
		}
		return err
	}))
}
