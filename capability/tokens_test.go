package capability

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/solo-rt/solo/eventstore/etcdstore/etcdtest"
)

// shared is one embedded etcd member for the tests of this package,
// started by the first test that needs it and stopped by TestMain.
var shared struct {
	once sync.Once
	dir  string
	c    *etcdtest.Cluster
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.c != nil {
		shared.c.Close()
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func sharedEtcd(tb testing.TB) *etcdtest.Cluster {
	tb.Helper()
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "solo-capability-"); shared.err == nil {
			shared.c, shared.err = etcdtest.New(shared.dir, 1, etcdtest.Options{NoFsync: true})
		}
	})
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.c
}

var prefixes atomic.Uint64

// newPrefix is a key prefix no other test uses.
func newPrefix() string { return fmt.Sprintf("/test/%d/tokens/", prefixes.Add(1)) }

// mustOpenEtcd opens an etcd store on cli under prefix, closed when tb
// ends. Its staleness bound is one no loaded machine reaches, unless o
// says otherwise.
func mustOpenEtcd(tb testing.TB, cli *clientv3.Client, prefix string, clk *clock, o *EtcdOptions) *EtcdStore {
	tb.Helper()
	if o == nil {
		o = &EtcdOptions{MaxStaleness: time.Minute}
	}
	o.Prefix = prefix
	if clk != nil {
		o.Now = clk.Now
	}
	s, err := OpenEtcd(context.Background(), cli, o)
	if err != nil {
		tb.Fatalf("open etcd store: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// backend opens a token store, and another on the same storage (a
// restart, or another node).
type backend struct {
	name string
	open func(t *testing.T, clk *clock) (s Tokens, again func() Tokens)
}

var backends = []backend{
	{"bbolt", func(t *testing.T, clk *clock) (Tokens, func() Tokens) {
		db := mustOpenDB(t)
		s := mustOpenStore(t, db, clk)
		return s, func() Tokens {
			s.Close()
			return mustOpenStore(t, db, clk)
		}
	}},
	{"etcd", func(t *testing.T, clk *clock) (Tokens, func() Tokens) {
		cli, prefix := sharedEtcd(t).Client(t), newPrefix()
		s := mustOpenEtcd(t, cli, prefix, clk, nil)
		return s, func() Tokens { return mustOpenEtcd(t, cli, prefix, clk, nil) }
	}},
}

// TestTokens_Contract runs what every [Tokens] must do against each
// backend.
func TestTokens_Contract(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("grant, authenticate, list", func(t *testing.T) {
				s, again := b.open(t, newClock())
				tok, pt, err := s.Grant(ctx, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeDeploy, ScopeRead}, Services: "web-*", Actor: "local", TTL: time.Hour})
				must(t, err)
				other, _, err := s.Grant(ctx, GrantRequest{Tenant: "other", Scopes: []Scope{ScopeAdmin}})
				must(t, err)
				got, err := s.Authenticate(pt)
				must(t, err)
				if !tokenEqual(got, tok) {
					t.Fatalf("authenticated %+v, granted %+v", got, tok)
				}
				if l := s.List("acme"); len(l) != 1 || !tokenEqual(l[0], tok) {
					t.Fatalf("List(acme) = %+v", l)
				}
				// Same creation time: sorted by id.
				if l := s.List(""); len(l) != 2 || !slices.ContainsFunc(l, func(x Token) bool { return tokenEqual(x, other) }) || l[0].ID > l[1].ID {
					t.Fatalf("List() = %+v", l)
				}
				// The other store on the same storage knows it.
				s2 := again()
				got, err = s2.Authenticate(pt)
				must(t, err)
				if !tokenEqual(got, tok) {
					t.Fatalf("after reopen %+v, granted %+v", got, tok)
				}
			})
			t.Run("tenant binding", func(t *testing.T) {
				s, _ := b.open(t, newClock())
				_, pt, err := s.Grant(ctx, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeAdmin}})
				must(t, err)
				tok, err := s.Authenticate(pt)
				must(t, err)
				if err := tok.Allows(ScopeRead, "acme", "web"); err != nil {
					t.Fatalf("own tenant: %v", err)
				}
				if err := tok.Allows(ScopeRead, "other", "web"); !errors.Is(err, ErrWrongTenant) {
					t.Fatalf("other tenant: %v, want ErrWrongTenant", err)
				}
			})
			t.Run("revoke", func(t *testing.T) {
				clk := newClock()
				s, again := b.open(t, clk)
				tok, pt, err := s.Grant(ctx, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeRead}})
				must(t, err)
				_, keepPT, err := s.Grant(ctx, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeRead}})
				must(t, err)
				at := clk.Now().Add(time.Minute)
				rev, err := s.Revoke(ctx, tok.ID, at)
				must(t, err)
				if !rev.RevokedAt.Equal(at) {
					t.Fatalf("RevokedAt = %v, want %v", rev.RevokedAt, at)
				}
				if _, err := s.Authenticate(pt); !errors.Is(err, ErrRevoked) {
					t.Fatalf("after revoke: %v, want ErrRevoked", err)
				}
				if _, err := s.Authenticate(keepPT); err != nil {
					t.Fatalf("the other token: %v", err)
				}
				again2, err := s.Revoke(ctx, tok.ID, at.Add(time.Hour))
				if err != nil || !again2.RevokedAt.Equal(at) {
					t.Fatalf("second revoke: %v, RevokedAt %v (want unchanged %v)", err, again2.RevokedAt, at)
				}
				if _, err := again().Authenticate(pt); !errors.Is(err, ErrRevoked) {
					t.Fatalf("after reopen: %v, want ErrRevoked", err)
				}
			})
			t.Run("revoke unknown", func(t *testing.T) {
				s, _ := b.open(t, newClock())
				_, pt, err := s.Grant(ctx, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
				must(t, err)
				_, err = s.Revoke(ctx, "01HZZZZZZZZZZZZZZZZZZZZZZZ", time.Time{})
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "01HZZZZZZZZZZZZZZZZZZZZZZZ") {
					t.Fatalf("err = %v, want ErrNotFound naming the id", err)
				}
				_, err = s.Revoke(ctx, pt, time.Time{})
				if !errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), pt[5:20]) {
					t.Fatalf("err = %v, want ErrNotFound without the plaintext", err)
				}
			})
			t.Run("expiry and sweep", func(t *testing.T) {
				clk := newClock()
				s, _ := b.open(t, clk)
				tok, pt, err := s.Grant(ctx, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}, TTL: time.Minute})
				must(t, err)
				clk.Set(tok.ExpiresAt.Add(-time.Nanosecond))
				if _, err := s.Authenticate(pt); err != nil {
					t.Fatalf("just before expiry: %v", err)
				}
				if n, err := s.Sweep(ctx); err != nil || n != 0 {
					t.Fatalf("sweep before expiry: %d, %v", n, err)
				}
				clk.Set(tok.ExpiresAt)
				if _, err := s.Authenticate(pt); !errors.Is(err, ErrExpired) {
					t.Fatalf("at expiry: %v, want ErrExpired", err)
				}
				if n, err := s.Sweep(ctx); err != nil || n != 1 {
					t.Fatalf("sweep at expiry: %d, %v", n, err)
				}
				if _, err := s.Authenticate(pt); !errors.Is(err, ErrUnknown) {
					t.Fatalf("swept: %v, want ErrUnknown", err)
				}
				if l := s.List(""); len(l) != 0 {
					t.Fatalf("swept but listed: %+v", l)
				}
			})
			t.Run("bad request writes nothing", func(t *testing.T) {
				s, again := b.open(t, newClock())
				for _, req := range []GrantRequest{
					{Tenant: "Bad", Scopes: []Scope{ScopeRead}},
					{Tenant: "a"},
					{Tenant: "a", Scopes: []Scope{"root"}},
					{Tenant: "a", Scopes: []Scope{ScopeRead}, TTL: -time.Second},
					{Tenant: "a", Scopes: []Scope{ScopeRead}, TTL: DefaultMaxTTL + time.Second},
					{Tenant: "a", Scopes: []Scope{ScopeRead}, Services: "["},
				} {
					if _, _, err := s.Grant(ctx, req); !errors.Is(err, ErrInvalid) {
						t.Errorf("grant %+v: %v, want ErrInvalid", req, err)
					}
				}
				if l := again().List(""); len(l) != 0 {
					t.Fatalf("stored: %+v", l)
				}
			})
			t.Run("closed", func(t *testing.T) {
				s, _ := b.open(t, newClock())
				_, pt, err := s.Grant(ctx, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
				must(t, err)
				must(t, s.Close())
				must(t, s.Close())
				if _, err := s.Authenticate(pt); !errors.Is(err, ErrClosed) {
					t.Fatalf("Authenticate: %v", err)
				}
				if _, _, err := s.Grant(ctx, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}}); !errors.Is(err, ErrClosed) {
					t.Fatalf("Grant: %v", err)
				}
				if err := s.Run(ctx); !errors.Is(err, ErrClosed) {
					t.Fatalf("Run: %v", err)
				}
			})
		})
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
