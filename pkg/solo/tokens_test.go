package solo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// tokenEvents returns the token events of the log, decoded.
func tokenEvents(t *testing.T, rt *solo.Runtime) []state.Payload {
	t.Helper()
	var out []state.Payload
	for env, err := range rt.Store().Read(1, 0) {
		require.NoError(t, err)
		if env.Type == string(state.TypeTokenGranted) || env.Type == string(state.TypeTokenRevoked) {
			p, err := state.Decode(env)
			require.NoError(t, err)
			out = append(out, p)
		}
	}
	return out
}

// assertNoSecret fails if any file under dir, the database included,
// holds the plaintext, or if any event of the log does.
func assertNoSecret(t *testing.T, dir string, rt *solo.Runtime, plaintext string) {
	t.Helper()
	if rt != nil {
		for env, err := range rt.Store().Read(1, 0) {
			require.NoError(t, err)
			assert.NotContains(t, string(env.Data), plaintext, "event %d holds the plaintext", env.Pos)
			assert.NotContains(t, env.Actor, plaintext)
		}
	}
	secret := []byte(plaintext)
	body := []byte(plaintext[len(capability.Prefix):]) // without the prefix, too
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		assert.False(t, bytes.Contains(b, secret) || bytes.Contains(b, body), "%s holds the plaintext", path)
		return nil
	})
	require.NoError(t, err)
	require.NotZero(t, n, "no file scanned")
}

func TestTokens_Grant(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := newTestClock()
	rt := MustOpen(t, solo.Options{DataDir: dir, Now: clk.Now})

	tok, pt, err := rt.Tokens().Grant(solo.WithActor(ctx, "01JTESTACTOR0000000000000A"), capability.GrantRequest{
		Tenant: "acme", Scopes: []capability.Scope{capability.ScopeDeploy, capability.ScopeRead}, TTL: time.Hour, Services: "web-*",
	})
	require.NoError(t, err)
	require.NoError(t, capability.Validate(pt))
	assert.Equal(t, "01JTESTACTOR0000000000000A", tok.Actor, "the context's actor is the token's")
	assert.True(t, clk.Now().Add(time.Hour).Equal(tok.ExpiresAt))

	got, err := rt.Tokens().Authenticate(pt)
	require.NoError(t, err)
	assert.Equal(t, tok.ID, got.ID)

	evs := tokenEvents(t, rt)
	require.Len(t, evs, 1)
	g, ok := evs[0].(state.TokenGranted)
	require.True(t, ok, "%T", evs[0])
	assert.True(t, g.ExpiresAt.Equal(tok.ExpiresAt), "expires %v, want %v", g.ExpiresAt, tok.ExpiresAt)
	g.ExpiresAt = time.Time{}
	assert.Equal(t, state.TokenGranted{ID: tok.ID, Tenant: "acme", Scopes: []string{"read", "deploy"}, Services: []string{"web-*"}}, g)
	var env struct{ tenant, subject, actor string }
	for e, err := range rt.Store().Read(1, 0) {
		require.NoError(t, err)
		if e.Type == string(state.TypeTokenGranted) {
			env.tenant, env.subject, env.actor = e.Tenant, e.Subject, e.Actor
		}
	}
	assert.Equal(t, "acme", env.tenant)
	assert.Equal(t, tok.ID, env.subject)
	assert.Equal(t, "01JTESTACTOR0000000000000A", env.actor)

	t.Run("neither the log nor any file holds the plaintext", func(t *testing.T) {
		assertNoSecret(t, dir, rt, pt)
	})

	t.Run("a refused grant writes nothing", func(t *testing.T) {
		head := rt.Store().Head()
		for _, req := range []capability.GrantRequest{
			{Tenant: "Bad Tenant", Scopes: []capability.Scope{capability.ScopeRead}},
			{Tenant: "acme"},
			{Tenant: "acme", Scopes: []capability.Scope{"root"}},
			{Tenant: "acme", Scopes: []capability.Scope{capability.ScopeRead}, TTL: -time.Second},
			{Tenant: "acme", Scopes: []capability.Scope{capability.ScopeRead}, TTL: capability.DefaultMaxTTL + 1},
			{Tenant: "acme", Scopes: []capability.Scope{capability.ScopeRead}, Services: "[bad"},
		} {
			_, _, err := rt.Tokens().Grant(ctx, req)
			assert.ErrorIs(t, err, capability.ErrInvalid, "%+v", req)
		}
		assert.Equal(t, head, rt.Store().Head())
		assert.Len(t, rt.Tokens().List(""), 1)
	})
}

func TestTokens_MaxTTL(t *testing.T) {
	rt := MustOpen(t, solo.Options{MaxTokenTTL: time.Hour})
	_, _, err := rt.Tokens().Grant(context.Background(), capability.GrantRequest{
		Tenant: "acme", Scopes: []capability.Scope{capability.ScopeRead}, TTL: 2 * time.Hour,
	})
	assert.ErrorIs(t, err, capability.ErrInvalid)
	tok, _, err := rt.Tokens().Grant(context.Background(), capability.GrantRequest{
		Tenant: "acme", Scopes: []capability.Scope{capability.ScopeRead},
	})
	require.NoError(t, err)
	assert.Equal(t, time.Hour, tok.ExpiresAt.Sub(tok.CreatedAt), "the default ttl is capped by the maximum")
}

// TestTokens_RevokeSurvivesRestart revokes a token, reopens the runtime on
// the same directory, and finds the token still refused, while one that
// was not revoked still works.
func TestTokens_RevokeSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rt, err := solo.Open(ctx, solo.Options{DataDir: dir})
	require.NoError(t, err)
	req := capability.GrantRequest{Tenant: "acme", Scopes: []capability.Scope{capability.ScopeRead}}
	gone, gonePT, err := rt.Tokens().Grant(ctx, req)
	require.NoError(t, err)
	_, keptPT, err := rt.Tokens().Grant(ctx, req)
	require.NoError(t, err)

	revoked, err := rt.Tokens().Revoke(ctx, gone.ID)
	require.NoError(t, err)
	assert.True(t, revoked.Revoked())
	_, err = rt.Tokens().Authenticate(gonePT)
	assert.ErrorIs(t, err, capability.ErrRevoked, "revocation takes effect at once")

	head := rt.Store().Head()
	again, err := rt.Tokens().Revoke(ctx, gone.ID)
	require.NoError(t, err, "revoking twice succeeds")
	assert.Equal(t, revoked.RevokedAt, again.RevokedAt)
	assert.Equal(t, head, rt.Store().Head(), "and writes nothing the second time")

	_, err = rt.Tokens().Revoke(ctx, "01JZZZZZZZZZZZZZZZZZZZZZZZ")
	assert.ErrorIs(t, err, capability.ErrNotFound)
	_, err = rt.Tokens().Revoke(ctx, keptPT)
	require.ErrorIs(t, err, capability.ErrNotFound)
	assert.NotContains(t, err.Error(), keptPT, "a plaintext given as an id is not echoed")

	require.NoError(t, rt.Close(ctx))
	_, err = rt.Tokens().Authenticate(keptPT)
	assert.ErrorIs(t, err, solo.ErrClosed)

	rt = MustOpen(t, solo.Options{DataDir: dir})
	_, err = rt.Tokens().Authenticate(gonePT)
	assert.ErrorIs(t, err, capability.ErrRevoked, "revocation survives a restart")
	_, err = rt.Tokens().Authenticate(keptPT)
	assert.NoError(t, err, "tokens are restored at Open")
	evs := tokenEvents(t, rt)
	require.Len(t, evs, 3)
	assert.Equal(t, state.TokenRevoked{ID: gone.ID}, evs[2])
	assertNoSecret(t, dir, rt, gonePT)
	assertNoSecret(t, dir, rt, keptPT)
}

// TestTokens_Expiry checks the boundary with the runtime's clock: valid
// one nanosecond before the expiry, refused at it, swept after.
func TestTokens_Expiry(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock()
	rt := MustOpen(t, solo.Options{Now: clk.Now})
	tok, pt, err := rt.Tokens().Grant(ctx, capability.GrantRequest{
		Tenant: "acme", Scopes: []capability.Scope{capability.ScopeRead}, TTL: time.Minute,
	})
	require.NoError(t, err)

	clk.Set(tok.ExpiresAt.Add(-time.Nanosecond))
	_, err = rt.Tokens().Authenticate(pt)
	require.NoError(t, err)
	clk.Set(tok.ExpiresAt)
	_, err = rt.Tokens().Authenticate(pt)
	require.ErrorIs(t, err, capability.ErrExpired)

	n, err := rt.Tokens().Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = rt.Tokens().Authenticate(pt)
	assert.ErrorIs(t, err, capability.ErrUnknown)
	assert.Empty(t, rt.Tokens().List(""))
}

func TestTokens_ShuttingDown(t *testing.T) {
	ctx := context.Background()
	rt, err := solo.Open(ctx, solo.Options{DataDir: t.TempDir()})
	require.NoError(t, err)
	require.NoError(t, rt.Close(ctx))
	_, _, err = rt.Tokens().Grant(ctx, capability.GrantRequest{Tenant: "acme", Scopes: []capability.Scope{capability.ScopeRead}})
	assert.ErrorIs(t, err, solo.ErrClosed)
	_, err = rt.Tokens().Revoke(ctx, "01JZZZZZZZZZZZZZZZZZZZZZZZ")
	assert.ErrorIs(t, err, solo.ErrClosed)
}

// BenchmarkOpen_Tokens measures solo.Open on a data dir holding n tokens:
// the difference between n=0 and n=100000 is what restoring the tokens
// costs the runtime's start (goal: at most 100 ms for 100,000).
func BenchmarkOpen_Tokens(b *testing.B) {
	for _, n := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			fillTokenDB(b, filepath.Join(dir, "solo.db"), n)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rt, err := solo.Open(ctx, solo.Options{DataDir: dir})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if got := len(rt.Tokens().List("tenant-00")); n > 0 && got != n/100 {
					b.Fatalf("restored %d tokens of tenant-00, want %d", got, n/100)
				}
				if err := rt.Close(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// fillTokenDB grants n tokens over 100 tenants in the database at path,
// through a capability.Store opened on it directly, without an fsync per
// grant (the file is synced once at the end).
func fillTokenDB(tb testing.TB, path string, n int) {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, NoSync: true})
	require.NoError(tb, err)
	defer db.Close()
	st, err := capability.Open(context.Background(), db, nil)
	require.NoError(tb, err)
	defer st.Close()
	for i := range n {
		req := capability.GrantRequest{
			Tenant: fmt.Sprintf("tenant-%02d", i%100), Scopes: []capability.Scope{capability.ScopeRead}, Actor: "local",
		}
		if i%3 == 0 {
			req.Services = "web-*"
		}
		if _, _, err := st.Grant(context.Background(), req); err != nil {
			tb.Fatal(err)
		}
	}
	require.NoError(tb, db.Sync())
}

func ExampleTokens() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "solo-example-")
	defer os.RemoveAll(dir)
	rt, err := solo.Open(ctx, solo.Options{DataDir: dir})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	tok, plaintext, err := rt.Tokens().Grant(ctx, capability.GrantRequest{
		Tenant: "acme", Scopes: []capability.Scope{capability.ScopeDeploy, capability.ScopeRead}, TTL: time.Hour,
	})
	if err != nil {
		panic(err)
	}
	// Show plaintext to the caller, once. Later, per request:
	got, err := rt.Tokens().Authenticate(plaintext)
	fmt.Println(got.ID == tok.ID, got.Tenant, got.Scopes, err)
	fmt.Println(errors.Is(got.Allows(capability.ScopeKill, "acme", "web"), capability.ErrScope))
	fmt.Println(got.Allows(capability.ScopeRead, "other", "web"))

	_, _ = rt.Tokens().Revoke(ctx, tok.ID)
	_, err = rt.Tokens().Authenticate(plaintext)
	fmt.Println(err)
	// Output:
	// true acme [read deploy] <nil>
	// true
	// token is not valid for this tenant
	// token revoked
}
