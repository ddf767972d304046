// Package capability is Solo's capability tokens: grant, authenticate,
// authorise, revoke, expire. A token is bound to one tenant, carries a set
// of [Scope]s, may be narrowed to services matching a pattern, and always
// expires.
//
// It owns its buckets in the bbolt file that also holds the event log
// ("tokens", "tokens_by_tenant", "tokens_by_id"), its keys in a cluster's
// etcd ([EtcdStore]), and the in-memory copy of every token that
// Authenticate reads. [Tokens] is what both stores do. It must never store, log,
// return in an error or put in an event a token's plaintext (invariant I7);
// never open, close or read any other bucket of the file; and never decide
// who may grant or revoke: the API layer does that, with [Token.Allows]. The
// runtime (package pkg/solo, its Tokens) wraps the store and appends the
// token_granted and token_revoked events.
//
// # Usage
//
//	s, err := capability.Open(ctx, db, &capability.Options{MaxTTL: 7 * 24 * time.Hour})
//	tok, plaintext, err := s.Grant(ctx, capability.GrantRequest{
//		Tenant: "default", Scopes: []capability.Scope{capability.ScopeRead}, Services: "web-*",
//	})
//	// show plaintext once; later, per request:
//	tok, err = s.Authenticate(plaintext)
//	err = tok.Allows(capability.ScopeDeploy, "default", "web-1") // *ScopeError: lacks "deploy"
//	go s.Run(ctx) // sweeps expired tokens
//
// # Tokens
//
// A plaintext is [Prefix] ("solo_"), 32 random bytes from crypto/rand in
// base62 (43 characters, left-padded with '0'), and a 6-character base62
// CRC-32 of that random part: [PlaintextLen] characters in all. Secret
// scanners recognise the prefix, and [Validate] catches a typo without a
// lookup. The plaintext is returned once, by [Store.Grant]; the store keeps
// only its SHA-256, as the key of a compact binary record. Token ids are
// ULIDs and are not secret.
//
// A token is valid strictly before [Token.ExpiresAt] and refused at that
// instant. A ttl is mandatory: zero means [Options.DefaultTTL], and more
// than [Options.MaxTTL] is refused.
//
// Tenants are hard boundaries: [Token.Allows] refuses any tenant but the
// token's own with [ErrWrongTenant], even for [ScopeAdmin], so an API
// answers "not found" and a token cannot learn which other tenants exist.
// Within its tenant, admin implies every scope.
//
// # Restore
//
// [Open] reads every token in one read transaction into a map keyed by
// hash, so authentication never touches the disk: about 35 ms for 100,000
// tokens on a 2-CPU machine (BenchmarkStore_Open_100kTokens), the records
// being a small binary form and the in-memory entries one slab. A damaged
// record is logged (by position, never by content) and set aside, never
// fatal; its token fails closed as [ErrUnknown].
//
// On disk, "tokens" maps SHA-256(plaintext) to the record,
// "tokens_by_id" maps the id to the hash ([Store.Revoke] finds a token
// through it), and "tokens_by_tenant" holds one bucket per tenant, id to
// hash, for tools that read the file. All three change in the same
// transaction.
//
// # Cluster
//
// An [EtcdStore] ([OpenEtcd]) keeps the same records in etcd, under
// [EtcdOptions.Prefix]: "h/" + hex(SHA-256) maps to the record, "id/" + id
// to the hex hash. Still hashes only. Grant is one transaction that
// creates both keys; Revoke rewrites the record in a transaction that
// compares its revision; both are committed by a quorum, and return once
// the node's own copy holds the change. Every node keeps a copy of every
// token in memory, which a watch keeps current, so Authenticate makes no
// request: a revocation on one node is refused on the others as soon as
// their watches bring it (milliseconds on loopback;
// BenchmarkEtcdStore_RevocationReach).
//
// It fails closed. Five times per [EtcdOptions.MaxStaleness] (1 s by
// default) a node makes a linearizable read, which only a member in touch
// with a quorum answers, and its copy is known current as of that read
// once its watch has brought every change up to the read's revision.
// While the last such instant is older than MaxStaleness (the node is cut
// off, its member lost its quorum, its watch broke), Authenticate refuses
// every token with [ErrNotSynced]: a token revoked elsewhere is never
// accepted more than MaxStaleness after the revocation committed.
//
// The etcd store lives in this package, not a package of its own, so that
// the grant rules, the record, and the verdict of Authenticate stay one
// each ([Options], the record codec, one authenticate function) for both
// stores, without exporting them; the cost is that this package links the
// etcd client, which every program that links it (the server and the
// daemon) links anyway. The Go client (pkg/client) and the web view do not
// import it.
//
// # Concurrency
//
// A [Store] is safe for concurrent use. Authenticate and List take a read
// lock on the map only. Grant, Revoke and Sweep are serialised among
// themselves; each writes and fsyncs one bbolt transaction and only then
// swaps the map entries under a short write lock, so readers never wait for
// the disk, and a change is visible in memory only once it is durable.
// [Store.Run] is periodic housekeeping on a [time.Ticker].
//
// # Caveats
//
//   - The map is what [Store.Authenticate] believes. A change made to the
//     buckets by anything but this [Store] (a second Store on the same
//     database, a tool) is not seen until the next [Open]: open one Store
//     per database.
//   - Authenticate finds a token by a map lookup on the SHA-256 of the
//     presented text. A lookup's timing can tell at most whether some
//     stored hash shares a prefix with a hash the caller cannot steer, so
//     it reveals nothing useful; the found entry is confirmed with
//     crypto/subtle.
//   - [Store.Revoke] takes effect at once; its time argument is what is
//     recorded, for listings and retention, not a schedule.
//   - Sweep deletes expired tokens at once and revoked ones after
//     [Options.Retention]; a swept token authenticates as [ErrUnknown],
//     no longer as [ErrExpired] or [ErrRevoked].
//   - Closing the store does not close the database.
//   - An [EtcdStore]'s copy and its staleness use each node's own clocks:
//     expiry by [Options.Now], as on one node; staleness by the monotonic
//     clock. Nodes whose wall clocks disagree disagree on expiry by as much.
//   - An [EtcdStore] reads all tokens in one request at open and after a
//     compaction of the revisions its watch needed.
package capability
