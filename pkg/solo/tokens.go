package solo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/pkg/state"
)

// Tokens are the runtime's capability tokens: the [capability.Store] kept
// in the runtime's own database file, plus the token_granted and
// token_revoked events that record every change in the log. Get it with
// [Runtime.Tokens]. Deciding who may grant or revoke is the caller's job
// (the API's); Tokens records the actor of the context (see [WithActor]).
//
// # Order of the two writes
//
// A grant or a revoke writes the token's bucket first (fsynced), then
// appends its event (fsynced), and returns only when both are durable
// (I1). The bucket comes first because it, not the log, is what
// authentication reads, and because each crash window then fails closed:
//
//   - grant: a crash between the two leaves a stored token that no event
//     records, but its plaintext died with the request that was never
//     answered, so nobody can present it; it expires and is swept. If the
//     append fails without a crash, the token is revoked again before the
//     error is returned.
//   - revoke: a crash between the two leaves the token revoked (refused at
//     once and after every restart) without its token_revoked event. The
//     opposite order could leave a log that says "revoked" over a token
//     that still works.
//
// The log is the audit trail of tokens, not their source: token events do
// not fold into the world, and a restart restores tokens from their bucket.
//
// # Concurrency
//
// Tokens is safe for concurrent use; see [capability.Store].
type Tokens struct {
	rt    *Runtime
	store capability.Tokens

	cancel context.CancelFunc
	swept  sync.WaitGroup // the sweeper, until close
}

// openTokens restores the tokens of r's database and starts their sweeper.
// It reads the token bucket once, in one read transaction, and does
// nothing else (so it adds nothing to [capability.Open]'s cost).
func (r *Runtime) openTokens(ctx context.Context) error {
	o := capability.Options{
		MaxTTL:        r.opts.MaxTokenTTL,
		SweepInterval: r.opts.TokenSweepInterval,
		Now:           r.opts.Now,
		Logger:        slog.New(hclogHandler{r.log.Named("tokens")}),
	}
	var st capability.Tokens
	var err error
	if r.opts.Tokens != nil {
		st, err = r.opts.Tokens(ctx, o)
	} else {
		st, err = capability.Open(ctx, r.local, &o)
	}
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	t := &Tokens{rt: r, store: st, cancel: cancel}
	t.swept.Go(func() { st.Run(runCtx) })
	r.tokens = t
	return nil
}

// close stops the sweeper and drops the tokens from memory. The database
// stays open: the event store closes it.
func (t *Tokens) close() {
	if t == nil {
		return
	}
	t.cancel()
	t.swept.Wait()
	t.store.Close()
}

// Tokens returns the runtime's capability tokens.
func (r *Runtime) Tokens() *Tokens { return r.tokens }

// Grant creates a token (see [capability.Store.Grant]) and records
// token_granted, with the context's actor as the token's Actor and the
// event's. It returns the token and its plaintext, which exists nowhere
// else: show it once. It returns only once both the token and the event
// are durable. A refused request returns an error wrapping
// [capability.ErrInvalid] and writes nothing; a runtime shutting down or
// closed returns [ErrShuttingDown] or [ErrClosed].
func (t *Tokens) Grant(ctx context.Context, req capability.GrantRequest) (capability.Token, string, error) {
	if err := t.rt.writable(); err != nil {
		return capability.Token{}, "", err
	}
	req.Actor = actorFrom(ctx)
	tok, plaintext, err := t.store.Grant(ctx, req)
	if err != nil {
		return capability.Token{}, "", t.mapErr(err)
	}
	ev := state.TokenGranted{
		ID: tok.ID, Tenant: tok.Tenant, Scopes: scopeStrings(tok.Scopes), ExpiresAt: tok.ExpiresAt,
	}
	if tok.Services != "" {
		ev.Services = []string{tok.Services}
	}
	if _, err := t.rt.append(ctx, state.Key{Tenant: tok.Tenant, Name: tok.ID}, ev, req.Actor); err != nil {
		// Nobody has seen the plaintext: take the token back, so that no
		// token exists that the log does not record.
		if _, rerr := t.store.Revoke(context.WithoutCancel(ctx), tok.ID, time.Time{}); rerr != nil {
			t.rt.log.Error("token granted but not recorded, and revoking it failed", "id", tok.ID, "error", rerr)
		}
		return capability.Token{}, "", fmt.Errorf("grant token: record: %w", err)
	}
	return tok, plaintext, nil
}

// Revoke revokes the token with id at once (see [capability.Store.Revoke])
// and records token_revoked. Revoking a revoked token writes nothing and
// returns it, like killing a killed service. An unknown id returns an
// error wrapping [capability.ErrNotFound].
func (t *Tokens) Revoke(ctx context.Context, id string) (capability.Token, error) {
	if err := t.rt.writable(); err != nil {
		return capability.Token{}, err
	}
	at := t.rt.opts.Now().UTC()
	tok, err := t.store.Revoke(ctx, id, at)
	if err != nil {
		return capability.Token{}, t.mapErr(err)
	}
	if !tok.RevokedAt.Equal(at) {
		return tok, nil // already revoked by an earlier call
	}
	if _, err := t.rt.append(ctx, state.Key{Tenant: tok.Tenant, Name: tok.ID}, state.TokenRevoked{ID: tok.ID}, actorFrom(ctx)); err != nil {
		return tok, fmt.Errorf("revoke token %s: revoked, but not recorded: %w", tok.ID, err)
	}
	return tok, nil
}

// Authenticate returns the token whose plaintext is presented; see
// [capability.Store.Authenticate] for its errors. It reads memory only.
func (t *Tokens) Authenticate(plaintext string) (capability.Token, error) {
	tok, err := t.store.Authenticate(plaintext)
	if err != nil {
		return tok, t.mapErr(err)
	}
	return tok, nil
}

// List returns the tokens of tenant ("" for every tenant), revoked and
// expired ones included until they are swept; see [capability.Store.List].
func (t *Tokens) List(tenant string) []capability.Token { return t.store.List(tenant) }

// Sweep deletes expired tokens, and revoked ones past their retention, now
// rather than at the sweeper's next tick. It records no event: expiry is
// not a decision.
func (t *Tokens) Sweep(ctx context.Context) (int, error) {
	n, err := t.store.Sweep(ctx)
	return n, t.mapErr(err)
}

// Now is the clock tokens expire by: [Options.Now].
func (t *Tokens) Now() time.Time { return t.rt.opts.Now() }

// mapErr turns the token store's "closed" into the runtime's.
func (t *Tokens) mapErr(err error) error {
	if errors.Is(err, capability.ErrClosed) {
		return fmt.Errorf("tokens: %w", ErrClosed)
	}
	return err
}

func scopeStrings(scopes []capability.Scope) []string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = string(s)
	}
	return out
}

// hclogHandler is a [slog.Handler] writing to an hclog.Logger, so that
// package capability's reports reach the runtime's log.
type hclogHandler struct{ log hclog.Logger }

func (h hclogHandler) Enabled(_ context.Context, l slog.Level) bool {
	switch {
	case l >= slog.LevelError:
		return h.log.IsError()
	case l >= slog.LevelWarn:
		return h.log.IsWarn()
	case l >= slog.LevelInfo:
		return h.log.IsInfo()
	}
	return h.log.IsDebug()
}

func (h hclogHandler) Handle(_ context.Context, r slog.Record) error {
	args := make([]any, 0, 2*r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		args = append(args, a.Key, a.Value.Resolve().Any())
		return true
	})
	switch {
	case r.Level >= slog.LevelError:
		h.log.Error(r.Message, args...)
	case r.Level >= slog.LevelWarn:
		h.log.Warn(r.Message, args...)
	case r.Level >= slog.LevelInfo:
		h.log.Info(r.Message, args...)
	default:
		h.log.Debug(r.Message, args...)
	}
	return nil
}

func (h hclogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	args := make([]any, 0, 2*len(attrs))
	for _, a := range attrs {
		args = append(args, a.Key, a.Value.Resolve().Any())
	}
	return hclogHandler{h.log.With(args...)}
}

func (h hclogHandler) WithGroup(name string) slog.Handler { return hclogHandler{h.log.Named(name)} }
