package capability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"go.etcd.io/bbolt"
)

var ctx = context.Background()

func TestStore_Grant(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		clk := newClock()
		s := mustOpenStore(t, mustOpenDB(t), clk)
		tok, pt, err := s.Grant(ctx, GrantRequest{
			Tenant: "acme", Scopes: []Scope{ScopeKill, ScopeRead, ScopeKill}, Services: "web-*", Actor: "local",
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(pt); err != nil {
			t.Fatalf("plaintext does not validate: %v", err)
		}
		if !strings.HasPrefix(pt, Prefix) || len(pt) != PlaintextLen {
			t.Fatalf("plaintext form: len %d", len(pt))
		}
		if want := []Scope{ScopeRead, ScopeKill}; !slices.Equal(tok.Scopes, want) {
			t.Errorf("scopes = %v, want %v (canonical, folded)", tok.Scopes, want)
		}
		if !tok.CreatedAt.Equal(clk.Now()) || !tok.ExpiresAt.Equal(clk.Now().Add(DefaultTTL)) {
			t.Errorf("times = %v .. %v, want default ttl from %v", tok.CreatedAt, tok.ExpiresAt, clk.Now())
		}
		if tok.Tenant != "acme" || tok.Services != "web-*" || tok.Actor != "local" || tok.Revoked() {
			t.Errorf("token = %+v", tok)
		}
		if len(tok.ID) != 26 {
			t.Errorf("id %q is not a ULID", tok.ID)
		}
	})
	t.Run("ttl at maximum", func(t *testing.T) {
		s := mustOpenStore(t, mustOpenDB(t), nil)
		tok, _ := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}, TTL: DefaultMaxTTL})
		if got := tok.ExpiresAt.Sub(tok.CreatedAt); got != DefaultMaxTTL {
			t.Errorf("ttl = %v", got)
		}
	})
	t.Run("plaintexts differ", func(t *testing.T) {
		s := mustOpenStore(t, mustOpenDB(t), nil)
		_, a := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
		_, b := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
		if a == b {
			t.Fatal("two grants gave one plaintext")
		}
	})

	bad := []struct {
		name  string
		req   GrantRequest
		wants []string // substrings of the error
	}{
		{"empty tenant", GrantRequest{Scopes: []Scope{ScopeRead}}, []string{"tenant"}},
		{"upper-case tenant", GrantRequest{Tenant: "Acme", Scopes: []Scope{ScopeRead}}, []string{`"Acme"`}},
		{"tenant starts with dot", GrantRequest{Tenant: ".x", Scopes: []Scope{ScopeRead}}, []string{"tenant"}},
		{"tenant too long", GrantRequest{Tenant: strings.Repeat("a", 64), Scopes: []Scope{ScopeRead}}, []string{"tenant"}},
		{"no scope", GrantRequest{Tenant: "a"}, []string{"no scope"}},
		{"unknown scope", GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead, "root"}}, []string{`"root"`}},
		{"bad pattern", GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}, Services: "web-[", Actor: "x"}, []string{`"web-["`}},
		{"long pattern", GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}, Services: strings.Repeat("*", 256)}, []string{"pattern"}},
		{"negative ttl", GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}, TTL: -time.Second}, []string{"-1s"}},
		{"ttl over maximum", GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}, TTL: DefaultMaxTTL + time.Nanosecond}, []string{"720h0m0.000000001s", "720h0m0s"}},
		{"long actor", GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}, Actor: strings.Repeat("x", 256)}, []string{"actor"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			db := mustOpenDB(t)
			s := mustOpenStore(t, db, nil)
			_, pt, err := s.Grant(ctx, tc.req)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if pt != "" {
				t.Error("plaintext returned with an error")
			}
			if n := len(s.List("")); n != 0 {
				t.Errorf("%d tokens in memory after a refused grant", n)
			}
			assertNoTokensOnDisk(t, db)
		})
	}
	t.Run("cancelled context writes nothing", func(t *testing.T) {
		db := mustOpenDB(t)
		s := mustOpenStore(t, db, nil)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := s.Grant(cctx, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		assertNoTokensOnDisk(t, db)
	})
}

func assertNoTokensOnDisk(tb testing.TB, db *bbolt.DB) {
	tb.Helper()
	_ = db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(bucketTokens).Stats().KeyN; n != 0 {
			tb.Errorf("%d tokens on disk", n)
		}
		return nil
	})
}

func TestStore_Authenticate(t *testing.T) {
	t.Run("allows matrix", func(t *testing.T) {
		s := mustOpenStore(t, mustOpenDB(t), nil)
		for _, granted := range Scopes() {
			for _, pattern := range []string{"", "web-*"} {
				_, pt := mustGrant(t, s, GrantRequest{Tenant: "acme", Scopes: []Scope{granted}, Services: pattern})
				tok, err := s.Authenticate(pt)
				if err != nil {
					t.Fatalf("authenticate %s/%q: %v", granted, pattern, err)
				}
				for _, want := range Scopes() {
					for _, tenant := range []string{"acme", "other"} {
						for _, service := range []string{"", "web-1", "db"} {
							name := fmt.Sprintf("granted=%s,pattern=%q/need=%s,tenant=%s,service=%q", granted, pattern, want, tenant, service)
							err := tok.Allows(want, tenant, service)
							var wantErr error
							switch {
							case tenant != "acme":
								wantErr = ErrWrongTenant
							case pattern != "" && service == "db":
								wantErr = ErrWrongService
							case granted != ScopeAdmin && granted != want:
								wantErr = ErrScope
							}
							if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
								t.Errorf("%s: err = %v, want %v", name, err, wantErr)
							}
							var se *ScopeError
							if errors.As(err, &se) && (se.Scope != want || !strings.Contains(err.Error(), string(want))) {
								t.Errorf("%s: scope error %q does not name %q", name, err, want)
							}
						}
					}
				}
			}
		}
	})
	t.Run("expiry boundary", func(t *testing.T) {
		clk := newClock()
		s := mustOpenStore(t, mustOpenDB(t), clk)
		tok, pt := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}, TTL: time.Hour})
		clk.Set(tok.ExpiresAt.Add(-time.Nanosecond))
		if _, err := s.Authenticate(pt); err != nil {
			t.Fatalf("1ns before expiry: %v", err)
		}
		clk.Set(tok.ExpiresAt)
		got, err := s.Authenticate(pt)
		if !errors.Is(err, ErrExpired) {
			t.Fatalf("at expiry: err = %v, want ErrExpired", err)
		}
		if got.ID != tok.ID {
			t.Errorf("expired token not returned with the error: %+v", got)
		}
		clk.Add(time.Hour)
		if _, err := s.Authenticate(pt); !errors.Is(err, ErrExpired) {
			t.Fatalf("after expiry: err = %v", err)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		s := mustOpenStore(t, mustOpenDB(t), nil)
		pt, _, err := newPlaintext()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(pt); !errors.Is(err, ErrUnknown) || strings.Contains(err.Error(), pt) {
			t.Fatalf("err = %v, want ErrUnknown without the token", err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		s := mustOpenStore(t, mustOpenDB(t), nil)
		_, pt := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
		for _, tc := range badPlaintexts(pt) {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.Authenticate(tc.in)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if tc.in != "" && strings.Contains(err.Error(), tc.in) {
					t.Fatalf("error %q contains the input", err)
				}
				if len(tc.in) > 10 && strings.Contains(err.Error(), tc.in[5:15]) {
					t.Fatalf("error %q contains part of the input", err)
				}
			})
		}
	})
	t.Run("returned token is a copy", func(t *testing.T) {
		s := mustOpenStore(t, mustOpenDB(t), nil)
		_, pt := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
		tok, _ := s.Authenticate(pt)
		tok.Scopes[0] = ScopeAdmin
		tok2, _ := s.Authenticate(pt)
		if tok2.Has(ScopeAdmin) {
			t.Fatal("caller's change to Scopes reached the store")
		}
	})
}

type badCase struct {
	name string
	in   string
	want error
}

// badPlaintexts derives broken tokens from a good one.
func badPlaintexts(pt string) []badCase {
	flip := func(i int) string {
		b := []byte(pt)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	random := pt[len(Prefix) : len(Prefix)+randomChars]
	return []badCase{
		{"empty", "", ErrMalformed},
		{"truncated by one", pt[:len(pt)-1], ErrMalformed},
		{"truncated to half", pt[:len(pt)/2], ErrMalformed},
		{"one too long", pt + "0", ErrMalformed},
		{"no prefix", random + pt[len(pt)-checkChars:] + "abcde", ErrMalformed},
		{"wrong prefix", "olos_" + pt[len(Prefix):], ErrMalformed},
		{"upper-case prefix", "SOLO_" + pt[len(Prefix):], ErrMalformed},
		{"trailing newline", pt[:len(pt)-1] + "\n", ErrMalformed},
		{"non-base62 char", pt[:20] + "-" + pt[21:], ErrMalformed},
		{"non-ASCII char", pt[:20] + "é" + pt[22:], ErrMalformed},
		{"random part over 2^256", Prefix + "z" + random[1:] + pt[len(pt)-checkChars:], ErrMalformed},
		{"typo in random part", flip(len(Prefix) + 7), ErrChecksum},
		{"typo in checksum", flip(len(pt) - 2), ErrChecksum},
		{"swapped characters", swap(pt, len(Prefix)+3, len(Prefix)+30), ErrChecksum},
	}
}

func swap(s string, i, j int) string {
	b := []byte(s)
	if b[i] == b[j] {
		b[j] = b[j] ^ 1 // keep it different: '0'<->'1', 'A'<->'@'... stay base62 below
		if !isBase62(b[j]) {
			b[j] = 'x'
		}
	}
	b[i], b[j] = b[j], b[i]
	return string(b)
}

func TestToken_Allows(t *testing.T) {
	tok := Token{ID: "01J0000000000000000000000X", Tenant: "default", Scopes: []Scope{ScopeRead, ScopeLogs}, Services: "api-?"}
	tests := []struct {
		name            string
		scope           Scope
		tenant, service string
		want            error
	}{
		{"granted scope", ScopeLogs, "default", "api-1", nil},
		{"listing is not a service", ScopeRead, "default", "", nil},
		{"missing scope", ScopeDeploy, "default", "api-1", ErrScope},
		{"pattern miss", ScopeRead, "default", "api-10", ErrWrongService},
		{"other tenant before scope", ScopeDeploy, "acme", "api-1", ErrWrongTenant},
		{"unknown scope", Scope("root"), "default", "api-1", ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tok.Allows(tc.scope, tc.tenant, tc.service)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("scope error names the scope", func(t *testing.T) {
		err := tok.Allows(ScopeKill, "default", "api-1")
		var se *ScopeError
		if !errors.As(err, &se) || se.Scope != ScopeKill || se.TokenID != tok.ID {
			t.Fatalf("err = %#v", err)
		}
		if want := `token 01J0000000000000000000000X lacks scope "kill"`; err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
	})
	t.Run("admin of default is not admin elsewhere", func(t *testing.T) {
		admin := Token{Tenant: "default", Scopes: []Scope{ScopeAdmin}}
		for _, sc := range Scopes() {
			if err := admin.Allows(sc, "default", "x"); err != nil {
				t.Errorf("admin in own tenant, %s: %v", sc, err)
			}
			if err := admin.Allows(sc, "acme", "x"); !errors.Is(err, ErrWrongTenant) {
				t.Errorf("admin in other tenant, %s: %v", sc, err)
			}
		}
	})
}

func TestStore_Revoke(t *testing.T) {
	t.Run("refused at once, idempotent, survives restart", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "solo.db")
		db := mustOpenDBAt(t, path)
		clk := newClock()
		s := mustOpenStore(t, db, clk)
		tok, pt := mustGrant(t, s, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeDeploy}, Services: "web-*", Actor: "local"})
		keep, keepPT := mustGrant(t, s, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeRead}})

		at := clk.Now().Add(time.Minute)
		rev, err := s.Revoke(ctx, tok.ID, at)
		if err != nil {
			t.Fatal(err)
		}
		if !rev.RevokedAt.Equal(at) {
			t.Errorf("RevokedAt = %v, want %v", rev.RevokedAt, at)
		}
		if _, err := s.Authenticate(pt); !errors.Is(err, ErrRevoked) {
			t.Fatalf("after revoke: err = %v, want ErrRevoked", err)
		}
		again, err := s.Revoke(ctx, tok.ID, at.Add(time.Hour))
		if err != nil || !again.RevokedAt.Equal(at) {
			t.Fatalf("second revoke: %v, RevokedAt %v (want unchanged %v)", err, again.RevokedAt, at)
		}
		before := s.List("")

		// Restart: close the store and the database, open both again.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(keepPT); !errors.Is(err, ErrClosed) {
			t.Errorf("closed store: err = %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db2 := mustOpenDBAt(t, path)
		s2 := mustOpenStore(t, db2, clk)

		if _, err := s2.Authenticate(pt); !errors.Is(err, ErrRevoked) {
			t.Fatalf("after restart: err = %v, want ErrRevoked", err)
		}
		got, err := s2.Authenticate(keepPT)
		if err != nil || got.ID != keep.ID {
			t.Fatalf("kept token after restart: %v, %+v", err, got)
		}
		after := s2.List("")
		if !slices.EqualFunc(before, after, tokenEqual) {
			t.Fatalf("restored tokens differ:\nbefore %+v\nafter  %+v", before, after)
		}
	})
	t.Run("zero time means now", func(t *testing.T) {
		clk := newClock()
		s := mustOpenStore(t, mustOpenDB(t), clk)
		tok, _ := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
		clk.Add(time.Second)
		rev, err := s.Revoke(ctx, tok.ID, time.Time{})
		if err != nil || !rev.RevokedAt.Equal(clk.Now()) {
			t.Fatalf("%v, RevokedAt %v", err, rev.RevokedAt)
		}
	})
	t.Run("unknown id", func(t *testing.T) {
		s := mustOpenStore(t, mustOpenDB(t), nil)
		_, pt := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
		_, err := s.Revoke(ctx, "01HZZZZZZZZZZZZZZZZZZZZZZZ", time.Time{})
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "01HZZZZZZZZZZZZZZZZZZZZZZZ") {
			t.Fatalf("err = %v, want ErrNotFound naming the id", err)
		}
		// A plaintext pasted where an id belongs must not be echoed.
		_, err = s.Revoke(ctx, pt, time.Time{})
		if !errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), pt[5:20]) {
			t.Fatalf("err = %v, want ErrNotFound without the plaintext", err)
		}
	})
}

func tokenEqual(a, b Token) bool {
	return a.ID == b.ID && a.Tenant == b.Tenant && slices.Equal(a.Scopes, b.Scopes) &&
		a.Services == b.Services && a.Actor == b.Actor && a.CreatedAt.Equal(b.CreatedAt) &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.RevokedAt.Equal(b.RevokedAt)
}

func TestStore_List(t *testing.T) {
	clk := newClock()
	s := mustOpenStore(t, mustOpenDB(t), clk)
	var pts []string
	var want []string
	for i, tenant := range []string{"b", "a", "b", "a", "c"} {
		tok, pt := mustGrant(t, s, GrantRequest{Tenant: tenant, Scopes: []Scope{ScopeRead}})
		pts = append(pts, pt)
		want = append(want, fmt.Sprintf("%d:%s", i, tok.ID))
		clk.Add(time.Second)
	}
	t.Run("all, by creation", func(t *testing.T) {
		got := s.List("")
		if len(got) != 5 {
			t.Fatalf("%d tokens", len(got))
		}
		for i, tok := range got {
			if !strings.HasSuffix(want[i], tok.ID) {
				t.Errorf("position %d: %s, want %s", i, tok.ID, want[i])
			}
		}
	})
	t.Run("one tenant", func(t *testing.T) {
		got := s.List("a")
		if len(got) != 2 || got[0].Tenant != "a" || got[1].Tenant != "a" || !got[0].CreatedAt.Before(got[1].CreatedAt) {
			t.Fatalf("got %+v", got)
		}
		if got := s.List("nobody"); len(got) != 0 {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("no secret", func(t *testing.T) {
		text := fmt.Sprintf("%+v %#v", s.List(""), s.List(""))
		for _, pt := range pts {
			if strings.Contains(text, pt) || strings.Contains(text, pt[5:48]) {
				t.Fatal("listing holds a plaintext")
			}
		}
	})
}

func TestStore_Sweep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "solo.db")
	db := mustOpenDBAt(t, path)
	clk := newClock()
	s, err := Open(ctx, db, &Options{Now: clk.Now, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	short, shortPT := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}, TTL: time.Minute})
	long, longPT := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}, TTL: 48 * time.Hour})
	rev, _ := mustGrant(t, s, GrantRequest{Tenant: "b", Scopes: []Scope{ScopeRead}, TTL: 48 * time.Hour})
	if _, err := s.Revoke(ctx, rev.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}

	t.Run("nothing due", func(t *testing.T) {
		if n, err := s.Sweep(ctx); n != 0 || err != nil {
			t.Fatalf("swept %d, %v", n, err)
		}
	})
	t.Run("expired goes, revoked stays within retention", func(t *testing.T) {
		clk.Add(time.Minute)
		if n, err := s.Sweep(ctx); n != 1 || err != nil {
			t.Fatalf("swept %d, %v", n, err)
		}
		if _, err := s.Authenticate(shortPT); !errors.Is(err, ErrUnknown) {
			t.Errorf("swept token: err = %v, want ErrUnknown", err)
		}
		if ids, want := ids(s.List("")), sorted(long.ID, rev.ID); !slices.Equal(ids, want) {
			t.Errorf("left %v", ids)
		}
		_ = short
	})
	t.Run("revoked goes after retention", func(t *testing.T) {
		clk.Add(time.Hour)
		if n, err := s.Sweep(ctx); n != 1 || err != nil {
			t.Fatalf("swept %d, %v", n, err)
		}
		if n, err := s.Sweep(ctx); n != 0 || err != nil {
			t.Fatalf("second sweep: %d, %v", n, err)
		}
	})
	t.Run("deleted on disk too", func(t *testing.T) {
		_ = s.Close()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := mustOpenStore(t, mustOpenDBAt(t, path), clk)
		if ids := ids(s2.List("")); !slices.Equal(ids, []string{long.ID}) {
			t.Fatalf("after restart: %v", ids)
		}
		if _, err := s2.Authenticate(longPT); err != nil {
			t.Fatal(err)
		}
	})
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// ids returns the ids of ts, sorted.
func ids(ts []Token) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	slices.Sort(out)
	return out
}

func TestStore_Open(t *testing.T) {
	t.Run("options", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			opts Options
		}{
			{"default over max", Options{MaxTTL: time.Hour, DefaultTTL: 2 * time.Hour}},
			{"negative", Options{Retention: -1}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := Open(ctx, mustOpenDB(t), &tc.opts); !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v", err)
				}
			})
		}
		t.Run("short max lowers the default", func(t *testing.T) {
			s, err := Open(ctx, mustOpenDB(t), &Options{MaxTTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
			if d := tok.ExpiresAt.Sub(tok.CreatedAt); d != time.Hour {
				t.Fatalf("ttl %v", d)
			}
		})
		if _, err := Open(ctx, nil, nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("nil db: %v", err)
		}
	})
	t.Run("leaves other buckets alone", func(t *testing.T) {
		db := mustOpenDB(t)
		if err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket([]byte("events"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte("v"))
		}); err != nil {
			t.Fatal(err)
		}
		s := mustOpenStore(t, db, nil)
		mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
		_ = db.View(func(tx *bbolt.Tx) error {
			var names []string
			_ = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
				names = append(names, string(name))
				return nil
			})
			if want := []string{"events", "tokens", "tokens_by_id", "tokens_by_tenant"}; !slices.Equal(names, want) {
				t.Errorf("buckets %v, want %v", names, want)
			}
			if v := tx.Bucket([]byte("events")).Get([]byte("k")); string(v) != "v" {
				t.Errorf("events bucket changed")
			}
			return nil
		})
	})
	t.Run("damaged record set aside", func(t *testing.T) {
		db := mustOpenDB(t)
		s := mustOpenStore(t, db, nil)
		_, goodPT := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
		bad, badPT := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
		_ = s.Close()
		// Damage bad's record in place, and add a stray short key.
		if err := db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucketTokens)
			h := tx.Bucket(bucketByID).Get([]byte(bad.ID)) // ids are stored as text
			if err := b.Put(h, []byte{recordV1, 1, 2, 3}); err != nil {
				return err
			}
			return b.Put([]byte("short"), []byte{recordV1})
		}); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		s2, err := Open(ctx, db, &Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("one damaged record made Open fail: %v", err)
		}
		if _, err := s2.Authenticate(goodPT); err != nil {
			t.Errorf("good token: %v", err)
		}
		if _, err := s2.Authenticate(badPT); !errors.Is(err, ErrUnknown) {
			t.Errorf("damaged token: err = %v, want ErrUnknown (fail closed)", err)
		}
		if !strings.Contains(logs.String(), "skipped=2") {
			t.Errorf("logs: %s", logs.String())
		}
		if strings.Contains(logs.String(), badPT[5:48]) {
			t.Error("logs hold a plaintext")
		}
		// Leave the file consistent for mustOpenDB's cleanup check.
		_ = db.Update(func(tx *bbolt.Tx) error {
			b, _ := buckets(tx)
			_ = b.tokens.Delete([]byte("short"))
			e := &entry{id: ulid.MustParse(bad.ID), tenant: bad.Tenant}
			copy(e.hash[:], b.byID.Get(idKey(e.id)))
			return b.del(e)
		})
	})
	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := Open(cctx, mustOpenDB(t), nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("read-only database without buckets", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "solo.db")
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Close()
		ro, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		s, err := Open(ctx, ro, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(s.List("")); n != 0 {
			t.Fatalf("%d tokens", n)
		}
	})
}

// TestStore_Secrets checks invariant I7 on the bytes of the file: neither
// the plaintext nor its random part is stored, in any encoding the store
// might have used.
func TestStore_Secrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "solo.db")
	db := mustOpenDBAt(t, path)
	s := mustOpenStore(t, db, nil)
	var pts []string
	for range 20 {
		_, pt := mustGrant(t, s, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeAdmin}})
		pts = append(pts, pt)
	}
	// Revoke one, so the record is rewritten too.
	if _, err := s.Revoke(ctx, s.List("")[0].ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range pts {
		random := pt[len(Prefix) : len(Prefix)+randomChars]
		for name, secret := range map[string]string{"plaintext": pt, "random part": random, "random half": random[:22], "random tail": random[21:]} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Fatalf("database file holds a token's %s", name)
			}
		}
	}
}

// TestStore_concurrent runs readers against writers under the race detector.
func TestStore_concurrent(t *testing.T) {
	s := mustOpenStore(t, mustOpenDB(t), nil)
	_, pt := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Authenticate(pt); err != nil {
					t.Error(err)
					return
				}
				_ = s.List("a")
			}
		})
	}
	for range 20 {
		tok, _ := mustGrant(t, s, GrantRequest{Tenant: "a", Scopes: []Scope{ScopeRead}, TTL: time.Minute})
		if _, err := s.Revoke(ctx, tok.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestSweepable(t *testing.T) {
	const ret = 10
	tests := []struct {
		name                  string
		expires, revoked, now int64
		want                  bool
	}{
		{"live", 100, 0, 50, false},
		{"1ns before expiry", 100, 0, 99, false},
		{"at expiry", 100, 0, 100, true},
		{"after expiry", 100, 0, 500, true},
		{"revoked, within retention", 100, 40, 49, false},
		{"revoked, retention over", 100, 40, 50, true},
		{"revoked and expired", 100, 95, 100, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &entry{expires: tc.expires, revoked: tc.revoked}
			if got := sweepable(e, tc.now, ret); got != tc.want {
				t.Fatalf("sweepable = %v, want %v", got, tc.want)
			}
		})
	}
}
