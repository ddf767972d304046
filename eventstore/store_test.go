package eventstore_test

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

// MustOpenStore opens a store in a temp dir and, at cleanup, closes it and
// checks the file: every test leaves a consistent log behind.
func MustOpenStore(tb testing.TB, opts *eventstore.Options) *eventstore.Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "solo.db")
	s, err := eventstore.Open(path, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		_, err := s.Check(context.Background())
		assert.NoError(tb, err, "store left inconsistent")
		require.NoError(tb, s.Close())
	})
	return s
}

func ev(tenant, subject, typ string, n int) eventstore.Event {
	return eventstore.Event{
		Type: typ, Tenant: tenant, Subject: subject, Actor: "local",
		Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

func readAll(tb testing.TB, s *eventstore.Store, from uint64) []eventstore.Envelope {
	tb.Helper()
	var out []eventstore.Envelope
	for env, err := range s.Read(from, 0) {
		require.NoError(tb, err)
		out = append(out, env)
	}
	return out
}

func TestStore_Append(t *testing.T) {
	ctx := context.Background()

	t.Run("positions are gapless and events read back intact", func(t *testing.T) {
		s := MustOpenStore(t, nil)
		pos, err := s.Append(ctx, ev("default", "web", "service_deployed", 1), ev("default", "db", "service_deployed", 2))
		require.NoError(t, err)
		assert.Equal(t, []uint64{1, 2}, pos)
		pos, err = s.Append(ctx, ev("", "", "system_started", 3))
		require.NoError(t, err)
		assert.Equal(t, []uint64{3}, pos)
		assert.Equal(t, uint64(3), s.Head())

		got := readAll(t, s, 0)
		require.Len(t, got, 3)
		for i, env := range got {
			assert.Equal(t, uint64(i+1), env.Pos)
			assert.NotEqual(t, ulid.ULID{}, env.ID)
			assert.JSONEq(t, fmt.Sprintf(`{"n":%d}`, i+1), string(env.Data))
			assert.Equal(t, time.UTC, env.Time.Location())
		}
		assert.Equal(t, "web", got[0].Subject)
		assert.Equal(t, "system_started", got[2].Type)
		// ULIDs from one store increase.
		assert.Negative(t, got[0].ID.Compare(got[1].ID))
		assert.Negative(t, got[1].ID.Compare(got[2].ID))
	})

	t.Run("re-appending a stored id writes nothing and returns its position", func(t *testing.T) {
		s := MustOpenStore(t, nil)
		e := ev("default", "web", "service_deployed", 1)
		e.ID = s.NewID()
		first, err := s.Append(ctx, e)
		require.NoError(t, err)
		_, err = s.Append(ctx, ev("default", "web", "service_started", 2))
		require.NoError(t, err)

		again, err := s.Append(ctx, e)
		require.NoError(t, err)
		assert.Equal(t, first, again)
		assert.Equal(t, uint64(2), s.Head(), "the retry wrote an event")
	})

	t.Run("a retry is idempotent even when its expectation no longer holds", func(t *testing.T) {
		s := MustOpenStore(t, nil)
		e := ev("default", "web", "service_deployed", 1)
		e.ID, e.Expect = s.NewID(), eventstore.ExpectVersion(0)
		first, err := s.Append(ctx, e)
		require.NoError(t, err)
		again, err := s.Append(ctx, e)
		require.NoError(t, err)
		assert.Equal(t, first, again)
	})

	t.Run("an old id on a different event is refused", func(t *testing.T) {
		s := MustOpenStore(t, nil)
		e := ev("default", "web", "service_deployed", 1)
		e.ID = s.NewID()
		_, err := s.Append(ctx, e)
		require.NoError(t, err)
		e.Type = "service_killed"
		_, err = s.Append(ctx, e)
		require.ErrorIs(t, err, eventstore.ErrIDReused)
		assert.Equal(t, uint64(1), s.Head())
	})

	t.Run("expected version", func(t *testing.T) {
		s := MustOpenStore(t, nil)
		e := ev("default", "web", "service_deployed", 1)
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
	})

	t.Run("all or nothing: a conflict in the second event writes neither", func(t *testing.T) {
		s := MustOpenStore(t, nil)
		a := ev("default", "web", "service_deployed", 1)
		b := ev("default", "db", "service_deployed", 2)
		b.Expect = eventstore.ExpectVersion(5)
		_, err := s.Append(ctx, a, b)
		require.ErrorIs(t, err, eventstore.ErrConflict)
		assert.Equal(t, uint64(0), s.Head())
		assert.Empty(t, readAll(t, s, 0))
	})

	t.Run("expectations count earlier events of the same call", func(t *testing.T) {
		s := MustOpenStore(t, nil)
		a := ev("default", "web", "service_deployed", 1)
		a.Expect = eventstore.ExpectVersion(0)
		b := ev("default", "web", "service_started", 2)
		b.Expect = eventstore.ExpectVersion(1)
		_, err := s.Append(ctx, a, b)
		require.NoError(t, err)
	})

	t.Run("invalid events are refused with the field named, nothing written", func(t *testing.T) {
		s := MustOpenStore(t, nil)
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
			_, err := s.Append(ctx, ev("default", "ok", "fine", 0), c.event)
			require.ErrorIs(t, err, eventstore.ErrInvalid, c.name)
			assert.Contains(t, err.Error(), c.field, c.name)
		}
		e := ev("default", "web", "x", 1)
		e.ID = id
		_, err := s.Append(ctx, e, e)
		require.ErrorIs(t, err, eventstore.ErrInvalid)
		assert.Equal(t, uint64(0), s.Head())
	})

	t.Run("closed store refuses appends", func(t *testing.T) {
		s, err := eventstore.Open(filepath.Join(t.TempDir(), "solo.db"), nil)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		_, err = s.Append(ctx, ev("default", "web", "x", 1))
		require.ErrorIs(t, err, eventstore.ErrClosed)
		require.NoError(t, s.Close(), "Close is idempotent")
	})
}

func TestStore_GroupCommit(t *testing.T) {
	ctx := context.Background()
	s := MustOpenStore(t, nil)

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
				e := ev("default", fmt.Sprintf("svc-%d", a), "tick", i)
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

func TestStore_ReadSubject(t *testing.T) {
	ctx := context.Background()
	s := MustOpenStore(t, nil)
	// Interleave three streams, past one read page, and a same-named
	// subject in another tenant that must not leak in.
	for i := 0; i < 1500; i += 50 {
		var batch []eventstore.Event
		for j := i; j < i+50; j++ {
			batch = append(batch, ev("default", "web", "tick", j), ev("default", "db", "tick", j), ev("other", "web", "tick", j))
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
	_, err := s.Append(ctx, ev("default", "we", "tick", 0))
	require.NoError(t, err)
	n = 0
	for _, err := range s.ReadSubject("default", "we", 0) {
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 1, n)
}

func TestStore_Read(t *testing.T) {
	ctx := context.Background()
	s := MustOpenStore(t, nil)
	for i := 0; i < 1200; i++ {
		_, err := s.Append(ctx, ev("default", "web", "tick", i))
		require.NoError(t, err)
	}
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
		assert.Empty(t, readAll(t, s, 5000))
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

func TestStore_Snapshot(t *testing.T) {
	ctx := context.Background()
	s := MustOpenStore(t, nil)
	_, _, err := s.LoadSnapshot()
	require.ErrorIs(t, err, eventstore.ErrNoSnapshot)

	for i := 0; i < 10; i++ {
		_, err := s.Append(ctx, ev("default", "web", "tick", i))
		require.NoError(t, err)
	}
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
}

func TestOpen_SecondOpener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "solo.db")
	s, err := eventstore.Open(path, nil)
	require.NoError(t, err)
	defer s.Close()

	start := time.Now()
	_, err = eventstore.Open(path, &eventstore.Options{LockTimeout: 100 * time.Millisecond})
	require.ErrorIs(t, err, eventstore.ErrLocked)
	var le *eventstore.LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, os.Getpid(), le.PID, "the holder is named")
	assert.Contains(t, err.Error(), fmt.Sprint(os.Getpid()))
	assert.Less(t, time.Since(start), 5*time.Second, "a locked open must fail, not hang")
}

func TestStore_Backup(t *testing.T) {
	ctx := context.Background()
	s := MustOpenStore(t, nil)
	for i := 0; i < 100; i++ {
		_, err := s.Append(ctx, ev("default", "web", "tick", i))
		require.NoError(t, err)
	}
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
			if _, err := s.Append(ctx, ev("default", "db", "tick", i)); err != nil {
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

	b, err := eventstore.Open(path, nil)
	require.NoError(t, err)
	defer b.Close()
	rep, err := b.Check(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, rep.Events, uint64(100))
	// The copy is a prefix of the live log.
	live := readAll(t, s, 0)
	for i, env := range readAll(t, b, 0) {
		assert.Equal(t, live[i].ID, env.ID)
	}
}
