package capability

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestStore_Run(t *testing.T) {
	db := mustOpenDB(t)
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(t.Context(), db, &Options{SweepInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, pt := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}, TTL: 90 * time.Second})
		runCtx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(runCtx) }()

		time.Sleep(time.Minute + time.Second) // first tick: not yet expired
		if _, err := s.Authenticate(pt); err != nil {
			t.Fatalf("after one tick: %v", err)
		}
		time.Sleep(time.Minute) // second tick at 2m: expired at 1m30s, swept
		synctest.Wait()
		if _, err := s.Authenticate(pt); !errors.Is(err, ErrUnknown) {
			t.Fatalf("after two ticks: err = %v, want ErrUnknown (swept)", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}

		go func() { done <- s.Run(t.Context()) }()
		_ = s.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatalf("Run after Close: %v", err)
		}
	})
}
