package supervisor

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeOneShot is a [OneShot] whose Serve is ServeFunc, counted.
type fakeOneShot struct {
	ServeFunc func(ctx context.Context, done func()) error
	serves    atomic.Int32
	done      chan struct{}
	once      sync.Once
}

var _ OneShot = (*fakeOneShot)(nil)

func newFakeOneShot(serve func(ctx context.Context, done func()) error) *fakeOneShot {
	return &fakeOneShot{ServeFunc: serve, done: make(chan struct{})}
}

func (f *fakeOneShot) Serve(ctx context.Context) error {
	f.serves.Add(1)
	return f.ServeFunc(ctx, func() { f.once.Do(func() { close(f.done) }) })
}

func (f *fakeOneShot) Done() <-chan struct{} { return f.done }

func (f *fakeOneShot) String() string { return "fake" }

func TestTree_RunOnce(t *testing.T) {
	cases := []struct {
		name       string
		serve      func(ctx context.Context, done func()) error
		unfinished bool
	}{
		{
			name:  "done: RunOnce returns nil",
			serve: func(_ context.Context, done func()) error { done(); return nil },
		},
		{
			name:  "done, then a panic: still done",
			serve: func(_ context.Context, done func()) error { done(); panic("after done") },
		},
		{
			// The recovery pass's shape before its fix: the panic spent the
			// sync.Once that closes Done, and RunOnce waited forever.
			name:       "panics before done: an error, not a hang",
			serve:      func(context.Context, func()) error { panic("boom") },
			unfinished: true,
		},
		{
			name:       "returns without done: an error, not a hang",
			serve:      func(context.Context, func()) error { return nil },
			unfinished: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tree := NewTree(nil)
			t.Cleanup(func() { tree.StopAll(context.Background()) })
			s := newFakeOneShot(c.serve)
			// The deadline only bounds a failure: a hang shows as
			// DeadlineExceeded instead of the test's timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := tree.RunOnce(ctx, s)
			if c.unfinished {
				require.ErrorIs(t, err, ErrOneShotUnfinished)
			} else {
				require.NoError(t, err)
			}
			require.NoError(t, tree.StopAll(ctx))
			assert.Equal(t, int32(1), s.serves.Load(), "a one-shot ran again")
		})
	}

	t.Run("a panic names its value", func(t *testing.T) {
		tree := NewTree(nil)
		t.Cleanup(func() { tree.StopAll(context.Background()) })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := tree.RunOnce(ctx, newFakeOneShot(func(context.Context, func()) error { panic("the value") }))
		require.ErrorIs(t, err, ErrOneShotUnfinished)
		assert.Contains(t, err.Error(), "the value")
	})

	t.Run("stopped tree", func(t *testing.T) {
		tree := NewTree(nil)
		require.NoError(t, tree.StopAll(context.Background()))
		err := tree.RunOnce(context.Background(), newFakeOneShot(func(_ context.Context, done func()) error { done(); return nil }))
		require.ErrorIs(t, err, ErrTreeStopped)
	})
}
