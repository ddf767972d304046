package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
)

// collect reads n events from sub, failing the test if they are not the
// positions from, from+1, ...
func collect(t *testing.T, sub *eventstore.Subscription, from uint64, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case env, ok := <-sub.C():
			require.True(t, ok, "subscription ended early: %v", sub.Err())
			require.Equal(t, from+uint64(i), env.Pos, "gap, duplicate or reorder")
		case <-deadline:
			t.Fatalf("timed out after %d of %d events", i, n)
		}
	}
}

func TestStore_Subscribe(t *testing.T) {
	ctx := context.Background()

	t.Run("catch-up then live, no gap or duplicate across the switch", func(t *testing.T) {
		s := MustOpenStore(t, nil)
		for i := 0; i < 700; i++ { // more than one read page
			_, err := s.Append(ctx, ev("default", "web", "tick", i))
			require.NoError(t, err)
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		sub := s.Subscribe(sctx, 1)

		// Append while the subscriber is still catching up.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				if _, err := s.Append(ctx, ev("default", "db", "tick", i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		collect(t, sub, 1, 2700)
		wg.Wait()
	})

	t.Run("from a position", func(t *testing.T) {
		s := MustOpenStore(t, nil)
		for i := 0; i < 10; i++ {
			_, err := s.Append(ctx, ev("default", "web", "tick", i))
			require.NoError(t, err)
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		sub := s.Subscribe(sctx, 6)
		collect(t, sub, 6, 5)
		_, err := s.Append(ctx, ev("default", "web", "tick", 10))
		require.NoError(t, err)
		collect(t, sub, 11, 1)
	})

	t.Run("a stalled subscriber does not slow appenders and misses nothing", func(t *testing.T) {
		s := MustOpenStore(t, &eventstore.Options{SubscriberBuffer: 16})
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stalled := s.Subscribe(sctx, 1)
		// Let it go live before the storm, so the overflow path is taken.
		_, err := s.Append(ctx, ev("default", "web", "tick", -1))
		require.NoError(t, err)
		collect(t, stalled, 1, 1)

		// Nobody reads stalled while 3000 events are appended: if publish
		// blocked on it, these appends would never finish.
		appended := make(chan error, 1)
		go func() {
			for i := 0; i < 3000; i++ {
				if _, err := s.Append(ctx, ev("default", "web", "tick", i)); err != nil {
					appended <- err
					return
				}
			}
			appended <- nil
		}()
		select {
		case err := <-appended:
			require.NoError(t, err)
		case <-time.After(60 * time.Second):
			t.Fatal("appends blocked behind a stalled subscriber")
		}
		assert.Positive(t, s.Stats().Overflows, "the stalled subscriber never fell back to the store")
		collect(t, stalled, 2, 3000)
	})

	t.Run("cancelling ends the subscription and unregisters it", func(t *testing.T) {
		s := MustOpenStore(t, nil)
		sctx, cancel := context.WithCancel(ctx)
		sub := s.Subscribe(sctx, 1)
		_, err := s.Append(ctx, ev("default", "web", "tick", 0))
		require.NoError(t, err)
		collect(t, sub, 1, 1)
		require.Eventually(t, func() bool { return s.Stats().Subscribers == 1 }, 10*time.Second, time.Millisecond)
		cancel()
		for range sub.C() {
		}
		require.ErrorIs(t, sub.Err(), context.Canceled)
		assert.Equal(t, 0, s.Stats().Subscribers)
	})

	t.Run("closing the store ends subscriptions", func(t *testing.T) {
		s, err := eventstore.Open(t.TempDir()+"/solo.db", nil)
		require.NoError(t, err)
		sub := s.Subscribe(ctx, 1)
		require.NoError(t, s.Close())
		for range sub.C() {
		}
		assert.True(t, errors.Is(sub.Err(), eventstore.ErrClosed), "got %v", sub.Err())
	})
}
