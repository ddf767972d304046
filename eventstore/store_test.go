package eventstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/eventstore/storetest"
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

// TestStore_Contract runs the contract every backend of eventstore.Log
// keeps (package storetest) against the bbolt store.
func TestStore_Contract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) eventstore.Log {
		s, err := eventstore.Open(filepath.Join(t.TempDir(), "solo.db"), &eventstore.Options{SubscriberBuffer: o.SubscriberBuffer})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		return s
	})
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

// TestAppend_LargerThanABatch: one Append may hold more events than a
// group commit gathers (an apply of many services is one call): it is
// written whole, in order, gapless; one over MaxAppend is refused whole,
// nothing written.
func TestAppend_LargerThanABatch(t *testing.T) {
	s := MustOpenStore(t, &eventstore.Options{MaxBatch: 4, MaxAppend: 10})
	assert.Equal(t, 10, s.MaxAppend())
	ctx := context.Background()
	events := func(n int) []eventstore.Event {
		out := make([]eventstore.Event, n)
		for i := range out {
			out[i] = eventstore.Event{Type: "t", Tenant: "default", Subject: fmt.Sprintf("s%d", i), Actor: "local", Data: []byte(`{}`)}
		}
		return out
	}
	pos, err := s.Append(ctx, events(10)...)
	require.NoError(t, err)
	require.Len(t, pos, 10)
	for i, p := range pos {
		assert.Equal(t, uint64(i+1), p, "positions in order, gapless")
	}

	_, err = s.Append(ctx, events(11)...)
	require.ErrorIs(t, err, eventstore.ErrInvalid)
	assert.Contains(t, err.Error(), "11 events in one append, limit 10")
	assert.Equal(t, uint64(10), s.Head(), "nothing of a refused append is written")

	small := MustOpenStore(t, &eventstore.Options{MaxBatch: 8, MaxAppend: 2})
	assert.Equal(t, 8, small.MaxAppend(), "MaxAppend is never below MaxBatch")
	assert.Equal(t, eventstore.DefaultMaxAppend, MustOpenStore(t, nil).MaxAppend())
}
