// Package eventstore is Solo's append-only event log on bbolt.
//
// It owns the envelope of an event, durable appends with group commit, reads
// over the whole log and over one (tenant, subject) stream, catch-up
// subscriptions, snapshots of whatever state a caller folds from the log, and
// the operational side: a consistency check, online backups, and opening a
// file that another process holds or that is damaged.
//
// The envelope's plain types ([Event], [Envelope], [Expectation]) are
// defined in the leaf package eventstore/event and aliased here, so that
// code which only reads or builds events (the domain's fold, the Go client)
// does not link bbolt. Their rules (limits, validation, the stored form)
// stay here.
//
// [Log] is the log as the rest of Solo uses it: append, read, follow,
// snapshot, check, back up. [Store] is its embedded backend, on bbolt, and
// what this doc describes; other backends (a cluster's) implement the same
// interface in their own packages and are held to the same contract by the
// tests of package eventstore/storetest. The envelope's stored form
// ([EncodeEnvelope]), the validation of an append ([ValidateAppend]) and
// the [Subscription] type are shared by every backend.
//
// It knows nothing about services, tokens or sessions: the meaning of an
// event's type and payload belongs to its callers. It must never interpret a
// payload, never rewrite or delete an appended event, and never hand out a
// position that is not durable.
//
// # Usage
//
//	s, err := eventstore.Open("solo.db", nil)
//	if err != nil { ... }
//	defer s.Close()
//	pos, err := s.Append(ctx, eventstore.Event{Type: "service_deployed", Tenant: "default", Subject: "web", Data: spec})
//	for env, err := range s.Read(1, 0) { ... }
//	sub := s.Subscribe(ctx, pos[0])
//	for env := range sub.C() { ... }
//
// # Positions
//
// Every event gets a position from the events bucket's sequence: 1 for the
// first event, then one more for each, with no gap, because the sequence is
// part of the same transaction as the event. [Store.Append] returns only after
// the transaction that holds the event has been fsynced (invariant I1).
//
// # Group commit
//
// Appends are handed to one committer goroutine. It takes the first waiting
// request, then every other request that is already queued (up to
// [DefaultMaxBatch] events), and commits them all in one bbolt transaction
// with one fsync. A lone appender is committed at once: nothing waits for a
// timer, unlike [bbolt.DB.Batch]. One request may hold more events than a
// group gathers (up to [DefaultMaxAppend]); it is never split. A request
// that fails its own checks ([ErrConflict], [ErrIDReused]) fails alone; the
// others in the group commit.
//
// # Encoding
//
// Envelopes are stored in a compact binary form with a CRC-32C, not as JSON:
// replaying the log is dominated by decoding, and the binary form decodes
// several times faster. Only the payload ([Envelope.Data]) is JSON, and the
// store never parses it.
//
// # Concurrency
//
// A [Store] is safe for concurrent use. Reads run in their own short bbolt
// read transactions (a page of events each) and never block appends. A slow
// subscriber never blocks appends either: its buffer is bounded, and when it
// fills the subscriber falls back to reading from the store (invariant I8).
//
// # Caveats
//
//   - One process at a time: bbolt takes an exclusive file lock. A second
//     opener fails after [Options.LockTimeout] with [ErrLocked], naming the pid
//     that holds the lock when /proc/locks tells it.
//   - bbolt keeps no checksums of its own pages. [Open] checks the meta pages
//     and the file size; [Store.Check] walks everything. A store that panics
//     in bbolt while reading a damaged page reports [ErrCorrupt] instead.
package eventstore
