// Package storetest is the contract of [eventstore.Log] as tests: every
// backend runs [Run] against stores it opens, so that bbolt and etcd are
// held to the same behaviour (positions, idempotent ids, expected versions,
// group commit, reads, catch-up-then-live subscriptions, snapshots, check,
// backup). Tests of one backend's internals (file locks, damaged files,
// a full disk, a lost quorum) stay in that backend's package.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
)

// Options ask the opener for a store configured for one test. A zero field
// means the backend's default.
type Options struct {
	// SubscriberBuffer is the live buffer of each subscription, in events.
	SubscriberBuffer int
}

// Opener returns a new, empty, open store, and arranges for it to be
// closed when t ends (closing twice must be harmless: some tests close it
// themselves).
type Opener func(t *testing.T, o Options) eventstore.Log

// Run runs the contract against stores from open, each subtest on a store
// of its own, and checks each store that is still open at the end of its
// subtest ([eventstore.Log.Check]).
func Run(t *testing.T, open Opener) {
	checked := func(t *testing.T, o Options) eventstore.Log {
		s := open(t, o)
		t.Cleanup(func() {
			if _, err := s.Check(context.Background()); !errors.Is(err, eventstore.ErrClosed) {
				assert.NoError(t, err, "store left inconsistent")
			}
		})
		return s
	}
	for _, c := range []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"Append", testAppend},
		{"GroupCommit", testGroupCommit},
		{"ReadSubject", testReadSubject},
		{"Read", testRead},
		{"Snapshot", testSnapshot},
		{"Backup", testBackup},
		{"Subscribe", testSubscribe},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, checked) })
	}
}

// Ev is an event of the given stream and type, with {"n":n} as its payload.
func Ev(tenant, subject, typ string, n int) eventstore.Event {
	return eventstore.Event{
		Type: typ, Tenant: tenant, Subject: subject, Actor: "local",
		Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

// ReadAll reads the whole log from position from on.
func ReadAll(tb testing.TB, s eventstore.Log, from uint64) []eventstore.Envelope {
	tb.Helper()
	var out []eventstore.Envelope
	for env, err := range s.Read(from, 0) {
		require.NoError(tb, err)
		out = append(out, env)
	}
	return out
}

// Collect reads n events from sub, failing the test if they are not the
// positions from, from+1, ... or if a minute passes without one (on a
// loaded machine a replicated append may take a while, but not that long).
func Collect(t *testing.T, sub *eventstore.Subscription, from uint64, n int) {
	t.Helper()
	stalled := time.NewTimer(time.Minute)
	defer stalled.Stop()
	for i := 0; i < n; i++ {
		select {
		case env, ok := <-sub.C():
			require.True(t, ok, "subscription ended early: %v", sub.Err())
			require.Equal(t, from+uint64(i), env.Pos, "gap, duplicate or reorder")
			stalled.Reset(time.Minute)
		case <-stalled.C:
			t.Fatalf("no event for a minute after %d of %d events", i, n)
		}
	}
}

// appendTicks appends n tick events to (default, subject) in calls of
// batch events each.
func appendTicks(t *testing.T, s eventstore.Log, subject string, n, batch int) {
	t.Helper()
	for i := 0; i < n; i += batch {
		var evs []eventstore.Event
		for j := i; j < min(i+batch, n); j++ {
			evs = append(evs, Ev("default", subject, "tick", j))
		}
		_, err := s.Append(context.Background(), evs...)
		require.NoError(t, err)
	}
}

func testAppend(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("positions are gapless and events read back intact", func(t *testing.T) {
		s := open(t, Options{})
		pos, err := s.Append(ctx, Ev("default", "web", "service_deployed", 1), Ev("default", "db", "service_deployed", 2))
		require.NoError(t, err)
		assert.Equal(t, []uint64{1, 2}, pos)
		pos, err = s.Append(ctx, Ev("", "", "system_started", 3))
		require.NoError(t, err)
		assert.Equal(t, []uint64{3}, pos)
		assert.Equal(t, uint64(3), s.Head())

		got := ReadAll(t, s, 0)
		require.Len(t, got, 3)
		for i, env := range got {
			assert.Equal(t, uint64(i+1), env.Pos)
			assert.NotEqual(t, ulid.ULID{}, env.ID)
			assert.JSONEq(t, fmt.Sprintf(`{"n":%d}`, i+1), string(env.Data))
			assert.Equal(t, time.UTC, env.Time.Location())
			assert.Equal(t, "local", env.Actor)
		}
		assert.Equal(t, "web", got[0].Subject)
		assert.Equal(t, "system_started", got[2].Type)
		// ULIDs from one store increase.
		assert.Negative(t, got[0].ID.Compare(got[1].ID))
		assert.Negative(t, got[1].ID.Compare(got[2].ID))
	})

	t.Run("re-appending a stored id writes nothing and returns its position", func(t *testing.T) {
		s := open(t, Options{})
		e := Ev("default", "web", "service_deployed", 1)
		e.ID = s.NewID()
		first, err := s.Append(ctx, e)
		require.NoError(t, err)
		_, err = s.Append(ctx, Ev("default", "web", "service_started", 2))
		require.NoError(t, err)

		again, err := s.Append(ctx, e)
		require.NoError(t, err)
		assert.Equal(t, first, again)
		assert.Equal(t, uint64(2), s.Head(), "the retry wrote an event")

		// In a call with a new event: the new one is written after the head.
		pos, err := s.Append(ctx, e, Ev("default", "web", "service_started", 3))
		require.NoError(t, err)
		assert.Equal(t, []uint64{first[0], 3}, pos)
	})

	t.Run("a retry is idempotent even when its expectation no longer holds", func(t *testing.T) {
		s := open(t, Options{})
		e := Ev("default", "web", "service_deployed", 1)
		e.ID, e.Expect = s.NewID(), eventstore.ExpectVersion(0)
		first, err := s.Append(ctx, e)
		require.NoError(t, err)
		again, err := s.Append(ctx, e)
		require.NoError(t, err)
		assert.Equal(t, first, again)
	})

	t.Run("an old id on a different event is refused", func(t *testing.T) {
		s := open(t, Options{})
		e := Ev("default", "web", "service_deployed", 1)
		e.ID = s.NewID()
		_, err := s.Append(ctx, e)
		require.NoError(t, err)
		e.Type = "service_killed"
		_, err = s.Append(ctx, e)
		require.ErrorIs(t, err, eventstore.ErrIDReused)
		assert.Equal(t, uint64(1), s.Head())
	})

	t.Run("expected version", func(t *testing.T) {
		s := open(t, Options{})
		e := Ev("default", "web", "service_deployed", 1)
		e.Expect = eventstore.ExpectVersion(0)
		_, err := s.Append(ctx, e)
		require.NoError(t, err)

		_, err = s.Append(ctx, e) // no id: a new event, and the stream is no longer new
		var ce *eventstore.ConflictError
		require.ErrorAs(t, err, &ce)
		require.ErrorIs(t, err, eventstore.ErrConflict)
		assert.Equal(t, uint64(0), ce.Expected)
		assert.Equal(t, uint64(1), ce.Actual)

		e.Expect = eventstore.ExpectVersion(1)
		_, err = s.Append(ctx, e)
		require.NoError(t, err)
		v, last, err := s.StreamVersion("default", "web")
		require.NoError(t, err)
		assert.Equal(t, uint64(2), v)
		assert.Equal(t, uint64(2), last)
		v, last, err = s.StreamVersion("default", "nothing")
		require.NoError(t, err)
		assert.Zero(t, v)
		assert.Zero(t, last)
	})

	t.Run("all or nothing: a conflict in the second event writes neither", func(t *testing.T) {
		s := open(t, Options{})
		a := Ev("default", "web", "service_deployed", 1)
		b := Ev("default", "db", "service_deployed", 2)
		b.Expect = eventstore.ExpectVersion(5)
		_, err := s.Append(ctx, a, b)
		require.ErrorIs(t, err, eventstore.ErrConflict)
		assert.Equal(t, uint64(0), s.Head())
		assert.Empty(t, ReadAll(t, s, 0))
	})

	t.Run("expectations count earlier events of the same call", func(t *testing.T) {
		s := open(t, Options{})
		a := Ev("default", "web", "service_deployed", 1)
		a.Expect = eventstore.ExpectVersion(0)
		b := Ev("default", "web", "service_started", 2)
		b.Expect = eventstore.ExpectVersion(1)
		_, err := s.Append(ctx, a, b)
		require.NoError(t, err)
	})

	t.Run("invalid events are refused with the field named, nothing written", func(t *testing.T) {
		s := open(t, Options{})
		id := s.NewID()
		cases := []struct {
			name  string
			event eventstore.Event
			field string
		}{
			{"empty type", eventstore.Event{Tenant: "t"}, "type"},
			{"huge subject", eventstore.Event{Type: "x", Subject: string(make([]byte, 300))}, "subject"},
			{"bad json", eventstore.Event{Type: "x", Data: json.RawMessage(`{`)}, "data"},
			{"huge data", eventstore.Event{Type: "x", Data: json.RawMessage(`"` + string(make([]byte, eventstore.MaxDataLen)) + `"`)}, "data"},
		}
		for _, c := range cases {
			_, err := s.Append(ctx, Ev("default", "ok", "fine", 0), c.event)
			require.ErrorIs(t, err, eventstore.ErrInvalid, c.name)
			assert.Contains(t, err.Error(), c.field, c.name)
		}
		e := Ev("default", "web", "x", 1)
		e.ID = id
		_, err := s.Append(ctx, e, e)
		require.ErrorIs(t, err, eventstore.ErrInvalid)
		assert.Equal(t, uint64(0), s.Head())
	})

	t.Run("closed store refuses appends", func(t *testing.T) {
		s := open(t, Options{})
		require.NoError(t, s.Close())
		_, err := s.Append(ctx, Ev("default", "web", "x", 1))
		require.ErrorIs(t, err, eventstore.ErrClosed)
		require.NoError(t, s.Close(), "Close is idempotent")
	})
}

func testGroupCommit(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Options{})

	// Many concurrent appenders, some of which conflict: the conflicting
	// ones fail alone, the others commit, and they share transactions.
	const appenders, each = 32, 50
	var wg sync.WaitGroup
	errs := make(chan error, appenders*each)
	seen := sync.Map{}
	for a := 0; a < appenders; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				e := Ev("default", fmt.Sprintf("svc-%d", a), "tick", i)
				if i == 10 {
					e.Expect = eventstore.ExpectVersion(999) // always conflicts
				}
				pos, err := s.Append(ctx, e)
				if i == 10 {
					if !errors.Is(err, eventstore.ErrConflict) {
						errs <- fmt.Errorf("appender %d: want conflict, got %v", a, err)
					}
					continue
				}
				if err != nil {
					errs <- err
					continue
				}
				if _, dup := seen.LoadOrStore(pos[0], a); dup {
					errs <- fmt.Errorf("position %d handed out twice", pos[0])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := uint64(appenders * (each - 1))
	assert.Equal(t, want, s.Head())
	st := s.Stats()
	assert.Equal(t, want, st.Events)
	assert.Less(t, st.Commits, want, "no two appends shared a transaction")
	for a := 0; a < appenders; a++ {
		v, _, err := s.StreamVersion("default", fmt.Sprintf("svc-%d", a))
		require.NoError(t, err)
		assert.Equal(t, uint64(each-1), v)
	}
}

func testReadSubject(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Options{})
	// Interleave three streams, past one read page, and a same-named
	// subject in another tenant that must not leak in.
	for i := 0; i < 1500; i += 10 {
		var batch []eventstore.Event
		for j := i; j < i+10; j++ {
			batch = append(batch, Ev("default", "web", "tick", j), Ev("default", "db", "tick", j), Ev("other", "web", "tick", j))
		}
		_, err := s.Append(ctx, batch...)
		require.NoError(t, err)
	}
	var got []eventstore.Envelope
	for env, err := range s.ReadSubject("default", "web", 0) {
		require.NoError(t, err)
		got = append(got, env)
	}
	require.Len(t, got, 1500)
	for i, env := range got {
		assert.Equal(t, "default", env.Tenant)
		assert.Equal(t, "web", env.Subject)
		assert.Equal(t, uint64(3*i+1), env.Pos)
	}

	// From a position in the middle.
	n := 0
	for env, err := range s.ReadSubject("default", "db", 3000) {
		require.NoError(t, err)
		assert.GreaterOrEqual(t, env.Pos, uint64(3000))
		n++
	}
	assert.Equal(t, 500, n)

	// A subject that is a prefix of another is its own stream.
	_, err := s.Append(ctx, Ev("default", "we", "tick", 0))
	require.NoError(t, err)
	n = 0
	for _, err := range s.ReadSubject("default", "we", 0) {
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 1, n)
}

func testRead(t *testing.T, open Opener) {
	s := open(t, Options{})
	appendTicks(t, s, "web", 1200, 10)
	t.Run("limit", func(t *testing.T) {
		n := 0
		for env, err := range s.Read(100, 700) {
			require.NoError(t, err)
			assert.Equal(t, uint64(100+n), env.Pos)
			n++
		}
		assert.Equal(t, 700, n)
	})
	t.Run("from beyond the head", func(t *testing.T) {
		assert.Empty(t, ReadAll(t, s, 5000))
	})
	t.Run("stopping early", func(t *testing.T) {
		n := 0
		for range s.Read(1, 0) {
			if n++; n == 3 {
				break
			}
		}
		assert.Equal(t, 3, n)
	})
}

func testSnapshot(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Options{})
	_, _, err := s.LoadSnapshot()
	require.ErrorIs(t, err, eventstore.ErrNoSnapshot)

	appendTicks(t, s, "web", 10, 1)
	require.NoError(t, s.SaveSnapshot(4, []byte("four")))
	require.NoError(t, s.SaveSnapshot(7, []byte("seven")))
	require.NoError(t, s.SaveSnapshot(9, []byte("nine")))
	pos, state, err := s.LoadSnapshot()
	require.NoError(t, err)
	assert.Equal(t, uint64(9), pos)
	assert.Equal(t, "nine", string(state))

	err = s.SaveSnapshot(11, []byte("future"))
	require.ErrorIs(t, err, eventstore.ErrInvalid)

	rep, err := s.Check(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Snapshots, "older snapshots are pruned")
	assert.Equal(t, uint64(10), rep.Events)
	assert.Equal(t, uint64(1), rep.Streams)
}

func testBackup(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Options{})
	appendTicks(t, s, "web", 100, 1)
	require.NoError(t, s.SaveSnapshot(50, []byte("fifty")))
	// Appends go on while the backup is written.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Append(ctx, Ev("default", "db", "tick", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	require.NoError(t, err)
	n, err := s.Backup(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	close(stop)
	<-done
	assert.Positive(t, n)

	rep, err := eventstore.CheckFile(ctx, path)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, rep.Events, uint64(100))

	b, err := eventstore.Open(path, nil)
	require.NoError(t, err)
	defer b.Close()
	// The copy is a prefix of the live log, event for event.
	live := ReadAll(t, s, 0)
	for i, env := range ReadAll(t, b, 0) {
		assert.Equal(t, live[i], env)
	}
	pos, state, err := b.LoadSnapshot()
	require.NoError(t, err)
	assert.Equal(t, uint64(50), pos)
	assert.Equal(t, "fifty", string(state))
}

func testSubscribe(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("catch-up then live, no gap or duplicate across the switch", func(t *testing.T) {
		s := open(t, Options{})
		appendTicks(t, s, "web", 700, 10) // more than one read page
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		sub := s.Subscribe(sctx, 1)

		// Append while the subscriber is still catching up: small calls,
		// so that the switch to live happens among many commits.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i += 4 {
				evs := []eventstore.Event{Ev("default", "db", "tick", i), Ev("default", "db", "tick", i+1), Ev("default", "db", "tick", i+2), Ev("default", "db", "tick", i+3)}
				if _, err := s.Append(ctx, evs...); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		Collect(t, sub, 1, 2700)
		wg.Wait()
	})

	t.Run("from a position", func(t *testing.T) {
		s := open(t, Options{})
		appendTicks(t, s, "web", 10, 1)
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		sub := s.Subscribe(sctx, 6)
		Collect(t, sub, 6, 5)
		_, err := s.Append(ctx, Ev("default", "web", "tick", 10))
		require.NoError(t, err)
		Collect(t, sub, 11, 1)
	})

	t.Run("a stalled subscriber does not slow appenders and misses nothing", func(t *testing.T) {
		s := open(t, Options{SubscriberBuffer: 16})
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stalled := s.Subscribe(sctx, 1)
		// Let it go live before the storm, so the overflow path is taken.
		_, err := s.Append(ctx, Ev("default", "web", "tick", -1))
		require.NoError(t, err)
		Collect(t, stalled, 1, 1)
		require.Eventually(t, func() bool { return s.Stats().Subscribers == 1 }, 30*time.Second, time.Millisecond)

		// Nobody reads stalled while 3000 events are appended: if an
		// append waited on it, these would never finish.
		appended := make(chan error, 1)
		go func() {
			for i := 0; i < 3000; i += 10 {
				var evs []eventstore.Event
				for j := i; j < i+10; j++ {
					evs = append(evs, Ev("default", "web", "tick", j))
				}
				if _, err := s.Append(ctx, evs...); err != nil {
					appended <- err
					return
				}
			}
			appended <- nil
		}()
		select {
		case err := <-appended:
			require.NoError(t, err)
		case <-time.After(120 * time.Second):
			t.Fatal("appends blocked behind a stalled subscriber")
		}
		require.Eventually(t, func() bool { return s.Stats().Overflows > 0 }, 30*time.Second, time.Millisecond,
			"the stalled subscriber never fell back to the store")
		Collect(t, stalled, 2, 3000)
	})

	t.Run("cancelling ends the subscription and unregisters it", func(t *testing.T) {
		s := open(t, Options{})
		sctx, cancel := context.WithCancel(ctx)
		sub := s.Subscribe(sctx, 1)
		_, err := s.Append(ctx, Ev("default", "web", "tick", 0))
		require.NoError(t, err)
		Collect(t, sub, 1, 1)
		require.Eventually(t, func() bool { return s.Stats().Subscribers == 1 }, 30*time.Second, time.Millisecond)
		cancel()
		for range sub.C() {
		}
		require.ErrorIs(t, sub.Err(), context.Canceled)
		assert.Equal(t, 0, s.Stats().Subscribers, "an ended subscription is still counted")
	})

	t.Run("closing the store ends subscriptions", func(t *testing.T) {
		s := open(t, Options{})
		sub := s.Subscribe(ctx, 1)
		require.NoError(t, s.Close())
		for range sub.C() {
		}
		assert.True(t, errors.Is(sub.Err(), eventstore.ErrClosed), "got %v", sub.Err())
	})
}
