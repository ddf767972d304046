package capability

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/solo-rt/solo/eventstore/etcdstore/etcdtest"
)

// TestEtcdStore_AcrossNodes: a token granted through one node's client
// authenticates through another's; revoked on the first, the second
// refuses it as soon as its watch brings the change.
func TestEtcdStore_AcrossNodes(t *testing.T) {
	c := etcdtest.Start(t, 3, etcdtest.Options{NoFsync: true})
	prefix := newPrefix()
	a := mustOpenEtcd(t, etcdtest.NewClient(t, c.Members[0].ClientURL), prefix, nil, nil)
	b := mustOpenEtcd(t, etcdtest.NewClient(t, c.Members[2].ClientURL), prefix, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tok, pt, err := a.Grant(ctx, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeDeploy}})
	must(t, err)
	must(t, b.Wait(ctx, a.Revision()))
	got, err := b.Authenticate(pt)
	must(t, err)
	if !tokenEqual(got, tok) {
		t.Fatalf("on b: %+v, granted on a: %+v", got, tok)
	}
	if err := got.Allows(ScopeDeploy, "other", ""); !errors.Is(err, ErrWrongTenant) {
		t.Fatalf("on b, another tenant: %v", err)
	}

	start := time.Now()
	_, err = a.Revoke(ctx, tok.ID, time.Time{})
	must(t, err)
	must(t, b.Wait(ctx, a.Revision()))
	reach := time.Since(start)
	if _, err := b.Authenticate(pt); !errors.Is(err, ErrRevoked) {
		t.Fatalf("on b after the revocation reached it: %v, want ErrRevoked", err)
	}
	t.Logf("revoked on a, refused on b %v after the revoke began (BenchmarkEtcdStore_RevocationReach measures it)", reach)
	if !slices.EqualFunc(a.List(""), b.List(""), tokenEqual) {
		t.Fatalf("lists differ:\na %+v\nb %+v", a.List(""), b.List(""))
	}
}

// TestEtcdStore_FailsClosed: a node cut off from its cluster refuses every
// token once its staleness bound has passed, never accepts a token revoked
// meanwhile, and catches up when healed.
func TestEtcdStore_FailsClosed(t *testing.T) {
	c := etcdtest.Start(t, 3, etcdtest.Options{NoFsync: true, Proxied: true})
	prefix := newPrefix()
	o := func() *EtcdOptions { return &EtcdOptions{MaxStaleness: time.Second} }
	a := mustOpenEtcd(t, etcdtest.NewClient(t, c.Members[0].ClientURL), prefix, nil, o())
	b := mustOpenEtcd(t, etcdtest.NewClient(t, c.Members[2].ClientURL), prefix, nil, o())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	tok, pt, err := a.Grant(ctx, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeRead}})
	must(t, err)
	must(t, b.Wait(ctx, a.Revision()))
	if _, err := b.Authenticate(pt); err != nil {
		t.Fatalf("before the cut: %v", err)
	}

	c.Isolate(2)
	revoked := make(chan time.Time, 1)
	go func() {
		// The majority side revokes while b is cut off. A revoke can meet
		// the leader change the cut causes: try until it commits.
		for ctx.Err() == nil {
			if _, err := a.Revoke(ctx, tok.ID, time.Time{}); err == nil {
				revoked <- time.Now()
				return
			}
		}
	}()
	// b must refuse the token (not synced, or revoked) from one staleness
	// bound after the revocation on; before it, it may still accept it.
	var at time.Time
	for ctx.Err() == nil {
		now := time.Now()
		_, err := b.Authenticate(pt)
		if at.IsZero() {
			select {
			case at = <-revoked:
			default:
			}
		}
		if errors.Is(err, ErrNotSynced) && !at.IsZero() {
			break
		}
		if err == nil && !at.IsZero() && now.Sub(at) > time.Second {
			t.Fatalf("b accepted a token revoked %v before", now.Sub(at))
		}
		if err != nil && !errors.Is(err, ErrNotSynced) {
			t.Fatalf("b while cut off: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // a check, not a wait: nothing tells b's staleness
	}
	must(t, ctx.Err())

	c.Heal(2)
	must(t, b.Wait(ctx, a.Revision()))
	for ctx.Err() == nil {
		if _, err := b.Authenticate(pt); errors.Is(err, ErrRevoked) {
			return
		} else if !errors.Is(err, ErrNotSynced) {
			t.Fatalf("b healed: %v, want ErrRevoked", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	must(t, ctx.Err())
}

// BenchmarkEtcdStore_RevocationReach measures how long a revocation takes
// from the start of Revoke on one node to the refusal on another (3
// members on loopback, fsync on): p50, p99 and max over b.N revocations.
func BenchmarkEtcdStore_RevocationReach(b *testing.B) {
	c := etcdtest.Start(b, 3, etcdtest.Options{})
	prefix := newPrefix()
	na := mustOpenEtcd(b, etcdtest.NewClient(b, c.Members[0].ClientURL), prefix, nil, nil)
	nb := mustOpenEtcd(b, etcdtest.NewClient(b, c.Members[2].ClientURL), prefix, nil, nil)
	ctx := context.Background()
	var reach []time.Duration
	for b.Loop() {
		b.StopTimer()
		tok, pt, err := na.Grant(ctx, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeRead}})
		must(b, err)
		must(b, nb.Wait(ctx, na.Revision()))
		b.StartTimer()
		start := time.Now()
		_, err = na.Revoke(ctx, tok.ID, time.Time{})
		must(b, err)
		must(b, nb.Wait(ctx, na.Revision()))
		reach = append(reach, time.Since(start))
		if _, err := nb.Authenticate(pt); !errors.Is(err, ErrRevoked) {
			b.Fatalf("on b: %v", err)
		}
	}
	slices.Sort(reach)
	q := func(p float64) float64 { return float64(reach[int(p*float64(len(reach)-1))]) / 1e6 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
}

// TestEtcdStore_ReloadsAfterCompaction: a watch that must resume from a
// revision etcd has compacted away reads every token again.
func TestEtcdStore_ReloadsAfterCompaction(t *testing.T) {
	cli, prefix := sharedEtcd(t).Client(t), newPrefix()
	a := mustOpenEtcd(t, cli, prefix, nil, nil)
	// Its first retry comes a tenth of MaxStaleness after the break.
	b := mustOpenEtcd(t, cli, prefix, nil, &EtcdOptions{MaxStaleness: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, pt, err := a.Grant(ctx, GrantRequest{Tenant: "acme", Scopes: []Scope{ScopeRead}})
	must(t, err)
	must(t, b.Wait(ctx, a.Revision()))

	// b stops following; meanwhile the token is revoked and the history
	// compacted.
	b.cancel()
	<-b.followed
	from := b.Revision()
	_, err = a.Revoke(ctx, tok.ID, time.Time{})
	must(t, err)
	later, err := cli.Put(ctx, prefix+"unrelated", "x") // the revocation's revision is below it
	must(t, err)
	_, err = cli.Compact(ctx, later.Header.Revision)
	must(t, err)

	fctx, stop := context.WithCancel(context.Background())
	b.cancel, b.followed = stop, make(chan struct{})
	go b.follow(fctx, from)
	must(t, b.Wait(ctx, a.Revision()))
	if _, err := b.Authenticate(pt); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after the reload: %v, want ErrRevoked", err)
	}
}
