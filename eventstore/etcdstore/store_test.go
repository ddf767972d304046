package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/eventstore/etcdstore"
	"github.com/solo-rt/solo/eventstore/etcdstore/etcdtest"
	"github.com/solo-rt/solo/eventstore/storetest"
)

// shared is one etcd member for the tests of this package that do not
// stop members: each test has its own key prefix (newPrefix).
var shared *etcdtest.Cluster

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "solo-etcdstore-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared, err = etcdtest.New(dir, 1, etcdtest.Options{NoFsync: true})
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	shared.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

var prefixes atomic.Uint64

// newPrefix is a key prefix no other test uses.
func newPrefix() string { return fmt.Sprintf("/test/%d/", prefixes.Add(1)) }

// open opens a store on cli with the test members' limits and, unless o
// says otherwise, a request timeout no loaded machine reaches; it is closed
// when t ends.
func open(t testing.TB, cli *clientv3.Client, o etcdstore.Options) *etcdstore.Store {
	t.Helper()
	o.MaxTxnOps, o.MaxRequestBytes = etcdtest.MaxTxnOps, etcdtest.MaxRequestBytes
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 30 * time.Second // a loaded machine, not a lost quorum
	}
	s, err := etcdstore.Open(cli, &o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// TestStore_Contract runs the contract every backend of eventstore.Log
// keeps (package storetest) against the etcd store.
func TestStore_Contract(t *testing.T) {
	cli := shared.Client(t)
	storetest.Run(t, func(t *testing.T, o storetest.Options) eventstore.Log {
		return open(t, cli, etcdstore.Options{Prefix: newPrefix(), SubscriberBuffer: o.SubscriberBuffer})
	})
}

// TestStore_TwoWriters: two stores on two clients share one log. Their
// positions interleave without gap or duplicate, and of two appends that
// expect the same stream version exactly one wins.
func TestStore_TwoWriters(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix()
	a := open(t, shared.Client(t), etcdstore.Options{Prefix: prefix})
	b := open(t, shared.Client(t), etcdstore.Options{Prefix: prefix})

	t.Run("expected versions: exactly one of two wins", func(t *testing.T) {
		const rounds = 50
		for v := uint64(0); v < rounds; v++ {
			var wins, conflicts atomic.Int32
			var wg sync.WaitGroup
			for _, s := range []*etcdstore.Store{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e := storetest.Ev("default", "web", "service_deployed", int(v))
					e.Expect = eventstore.ExpectVersion(v)
					_, err := s.Append(ctx, e)
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, eventstore.ErrConflict):
						conflicts.Add(1)
					default:
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			require.Equal(t, int32(1), wins.Load(), "round %d", v)
			require.Equal(t, int32(1), conflicts.Load(), "round %d", v)
		}
		version, _, err := b.StreamVersion("default", "web")
		require.NoError(t, err)
		assert.Equal(t, uint64(rounds), version)
	})

	t.Run("an id appended by one is the same event for the other", func(t *testing.T) {
		e := storetest.Ev("default", "db", "service_deployed", 1)
		e.ID = a.NewID()
		first, err := a.Append(ctx, e)
		require.NoError(t, err)
		again, err := b.Append(ctx, e, storetest.Ev("default", "db", "service_started", 2))
		require.NoError(t, err)
		assert.Equal(t, first[0], again[0])
		assert.Equal(t, first[0]+1, again[1])
		e.Type = "service_killed"
		_, err = b.Append(ctx, e)
		require.ErrorIs(t, err, eventstore.ErrIDReused)
	})

	t.Run("positions stay gapless and unique", func(t *testing.T) {
		const each = 200
		start := a.Head()
		var mu sync.Mutex
		got := map[uint64]ulid.ULID{}
		var wg sync.WaitGroup
		for w, s := range []*etcdstore.Store{a, b, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					e := storetest.Ev("default", fmt.Sprintf("w%d", w), "tick", i)
					e.ID = s.NewID()
					pos, err := s.Append(ctx, e)
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					_, dup := got[pos[0]]
					got[pos[0]] = e.ID
					mu.Unlock()
					assert.False(t, dup, "position %d handed out twice", pos[0])
				}
			}()
		}
		wg.Wait()
		require.Len(t, got, 4*each)
		for _, env := range storetest.ReadAll(t, a, start+1) {
			assert.Equal(t, got[env.Pos], env.ID, "event %d is not the one acknowledged at it", env.Pos)
		}
		assert.Equal(t, start+4*each, b.Head())
		_, err := a.Check(ctx)
		require.NoError(t, err)
	})
}

// TestStore_LostQuorum runs a log on three members. With one stopped,
// appends still commit; with two stopped, they fail with ErrUnavailable,
// naming the endpoints, and nothing is acknowledged that is not committed:
// with the members back, every acknowledged event is there at its
// position, and retrying the failed append with its ids writes it once.
func TestStore_LostQuorum(t *testing.T) {
	ctx := context.Background()
	c := etcdtest.Start(t, 3, etcdtest.Options{NoFsync: true})
	s := open(t, c.Client(t), etcdstore.Options{Prefix: newPrefix(), RequestTimeout: 3 * time.Second})

	acked := map[uint64]ulid.ULID{}
	// commit appends an event until it is acknowledged: on a loaded
	// machine a commit may outlast the request timeout, and the retry
	// (same id) is what a caller does with an unknown outcome.
	commit := func(e eventstore.Event, why string) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); ; {
			pos, err := s.Append(ctx, e)
			if err == nil {
				acked[pos[0]] = e.ID
				return
			}
			require.ErrorIs(t, err, eventstore.ErrUnavailable, why)
			require.False(t, time.Now().After(deadline), "%s: %v", why, err)
		}
	}
	tick := func(n int) eventstore.Event {
		e := storetest.Ev("default", "web", "tick", n)
		e.ID = s.NewID()
		return e
	}
	for i := 0; i < 10; i++ {
		commit(tick(i), "three members up")
	}

	follower := (c.Leader() + 1) % 3
	c.Stop(follower)
	for i := 10; i < 20; i++ {
		commit(tick(i), "one member of three stopped: appends must still commit")
	}

	c.Stop((follower + 1) % 3)
	failures := s.Stats().WriteFailures
	failed := tick(20)
	_, err := s.Append(ctx, failed)
	require.ErrorIs(t, err, eventstore.ErrUnavailable, "two members of three stopped: no quorum")
	assert.Contains(t, err.Error(), c.Members[0].ClientURL, "the error names the endpoints")
	assert.Equal(t, failures+1, s.Stats().WriteFailures)

	require.NoError(t, c.Restart(follower))
	// The outcome of the failed append was unknown: its retry, with the
	// same id, is written at most once.
	commit(failed, "a quorum is back")

	got := storetest.ReadAll(t, s, 0)
	require.Len(t, got, len(acked), "an event is missing, or one was written twice")
	for _, env := range got {
		assert.Equal(t, acked[env.Pos], env.ID, "event %d", env.Pos)
	}
	_, err = s.Check(ctx)
	require.NoError(t, err)
}

// TestStore_SubscribeAcrossLeaderChange follows a log on three members
// while the leader is stopped mid-stream: the subscriber sees every
// acknowledged event once, in order.
func TestStore_SubscribeAcrossLeaderChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := etcdtest.Start(t, 3, etcdtest.Options{NoFsync: true})
	prefix := newPrefix()
	w := open(t, c.Client(t), etcdstore.Options{Prefix: prefix, RequestTimeout: 2 * time.Second})
	r := open(t, c.Client(t), etcdstore.Options{Prefix: prefix, RequestTimeout: 2 * time.Second})
	sub := r.Subscribe(ctx, 1)

	const total = 300
	var mu sync.Mutex // ids is written by the appender, read by the test
	ids := make([]ulid.ULID, total)
	leader := c.Leader()
	require.GreaterOrEqual(t, leader, 0)
	appended := make(chan error, 1)
	halfway := make(chan struct{})
	go func() {
		for i := range ids {
			if i == total/2 {
				close(halfway)
			}
			e := storetest.Ev("default", "web", "tick", i)
			e.ID = w.NewID()
			mu.Lock()
			ids[i] = e.ID
			mu.Unlock()
			for { // an unknown outcome is retried with the same id
				pos, err := w.Append(ctx, e)
				if err == nil {
					if pos[0] != uint64(i+1) {
						appended <- fmt.Errorf("event %d acknowledged at position %d", i, pos[0])
						return
					}
					break
				}
				if !errors.Is(err, eventstore.ErrUnavailable) {
					appended <- err
					return
				}
			}
		}
		appended <- nil
	}()
	<-halfway
	c.Stop(leader)

	for i := 0; i < total; {
		select {
		case env, ok := <-sub.C():
			require.True(t, ok, "subscription ended: %v", sub.Err())
			require.Equal(t, uint64(i+1), env.Pos, "gap, duplicate or reorder")
			mu.Lock()
			id := ids[i]
			mu.Unlock()
			require.Equal(t, id, env.ID)
			i++
		case err := <-appended:
			require.NoError(t, err)
			appended = nil // all appended; the rest is still to come
		case <-ctx.Done():
			t.Fatalf("timed out after %d of %d events", i, total)
		}
	}
	if appended != nil {
		require.NoError(t, <-appended)
	}
	assert.NotEqual(t, leader, c.Leader(), "no leader change happened: the test proves nothing")
}

// TestOpen_Unreachable: a cluster that does not answer fails Open with
// ErrUnavailable, naming the endpoints, within the request timeout.
func TestOpen_Unreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	endpoint := "http://" + l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	cli := etcdtest.NewClient(t, endpoint)
	_, err = etcdstore.Open(cli, &etcdstore.Options{Prefix: newPrefix(), RequestTimeout: 500 * time.Millisecond})
	require.ErrorIs(t, err, eventstore.ErrUnavailable)
	assert.Contains(t, err.Error(), endpoint)
}

// TestStore_TxnLimits: on a member that allows 41 operations in a Txn,
// one Append beyond what a Txn may hold is refused, and a group commit
// never puts more than that in one Txn (the member would refuse it),
// however many appenders queue.
func TestStore_TxnLimits(t *testing.T) {
	ctx := context.Background()
	c := etcdtest.Start(t, 1, etcdtest.Options{NoFsync: true, MaxTxnOps: 41})
	s, err := etcdstore.Open(c.Client(t), &etcdstore.Options{Prefix: newPrefix(), MaxTxnOps: 41})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.Equal(t, 10, s.MaxBatch())

	evs := make([]eventstore.Event, 11)
	for i := range evs {
		evs[i] = storetest.Ev("default", "web", "tick", i)
	}
	_, err = s.Append(ctx, evs...)
	require.ErrorIs(t, err, eventstore.ErrInvalid)
	assert.Contains(t, err.Error(), "limit 10")

	var wg sync.WaitGroup
	for a := 0; a < 16; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				_, err := s.Append(ctx, evs[:3]...)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, uint64(16*20*3), s.Head())
	_, err = s.Check(ctx)
	require.NoError(t, err)
}

// TestStore_AppendFenced: a fenced append is written while its fence
// holds, and refused with ErrFenced, nothing written, once it does not (a
// deposed leader's election key is gone); unfenced appends queued beside
// it are unaffected.
func TestStore_AppendFenced(t *testing.T) {
	ctx := context.Background()
	cli := shared.Client(t)
	prefix := newPrefix()
	s := open(t, cli, etcdstore.Options{Prefix: prefix})
	leader := prefix + "leader"
	put, err := cli.Put(ctx, leader, "n1")
	require.NoError(t, err)
	fence := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(leader), "=", put.Header.Revision)}

	pos, err := s.AppendFenced(ctx, fence, storetest.Ev("default", "web", "service_placed", 1))
	require.NoError(t, err)
	require.Equal(t, []uint64{1}, pos)

	// The key is deleted and created again: a new leader, a new revision.
	_, err = cli.Delete(ctx, leader)
	require.NoError(t, err)
	_, err = cli.Put(ctx, leader, "n2")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var fencedErr, plainErr error
	wg.Go(func() { _, fencedErr = s.AppendFenced(ctx, fence, storetest.Ev("default", "web", "service_placed", 2)) })
	wg.Go(func() { _, plainErr = s.Append(ctx, storetest.Ev("default", "api", "service_deployed", 3)) })
	wg.Wait()
	require.ErrorIs(t, fencedErr, etcdstore.ErrFenced)
	require.NoError(t, plainErr)
	require.Equal(t, uint64(2), s.Head(), "only the unfenced event was written")
	for env, err := range s.ReadSubject("default", "web", 1) {
		require.NoError(t, err)
		require.Equal(t, uint64(1), env.Pos, "the refused event is not in the log")
	}

	_, err = s.AppendFenced(ctx, nil, storetest.Ev("default", "web", "service_placed", 4))
	require.ErrorIs(t, err, eventstore.ErrInvalid)
}
