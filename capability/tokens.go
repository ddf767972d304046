package capability

import (
	"context"
	"time"
)

// Tokens is what Solo needs of a token store: the bbolt [Store] on one
// node, the [EtcdStore] in a cluster. Each method's contract is the one
// documented on [Store]; an implementation documents only where it
// differs (an [EtcdStore] may refuse every token with [ErrNotSynced]).
type Tokens interface {
	// Grant creates a token and returns it with its plaintext, shown
	// this once.
	Grant(ctx context.Context, req GrantRequest) (Token, string, error)
	// Authenticate finds the token of a plaintext, from memory only.
	Authenticate(plaintext string) (Token, error)
	// Revoke revokes the token with id, at once.
	Revoke(ctx context.Context, id string, at time.Time) (Token, error)
	// List returns the tokens of a tenant ("" for all), from memory only.
	List(tenant string) []Token
	// Sweep deletes expired tokens, and revoked ones past retention.
	Sweep(ctx context.Context) (int, error)
	// Run sweeps periodically until ctx ends or the store is closed.
	Run(ctx context.Context) error
	// Close drops the tokens from memory; later calls get [ErrClosed].
	Close() error
}

var (
	_ Tokens = (*Store)(nil)
	_ Tokens = (*EtcdStore)(nil)
)
