package eventstore

import (
	"context"
	"fmt"
	"io"
	"iter"

	"github.com/oklog/ulid/v2"
)

// Log is the event log as the rest of Solo uses it. [Store] (bbolt, one
// machine) implements it, and so does package eventstore/etcdstore (etcd,
// a cluster). Callers that only append, read, follow and snapshot depend on
// Log, not on a backend; the contract below is what both backends are
// tested against (package eventstore/storetest).
//
// A Log is safe for concurrent use.
type Log interface {
	// Append writes events as one unit: all of them or none. It returns
	// their positions, in order, once they are committed: fsynced for
	// bbolt, accepted by a quorum of the cluster for etcd (invariant I1).
	// A nil error means committed; an error never hides a commit it could
	// see, but an error that wraps [ErrUnavailable], or ctx's error, leaves
	// the outcome unknown.
	//
	// Positions are global, start at 1 and have no gap: each event gets the
	// position after the one before it in the whole log.
	//
	// An event whose ID is already stored is not written again: its
	// original position is returned and its Expect is not checked, so a
	// retry after an unknown outcome succeeds. If the stored event differs
	// in type, tenant or subject, Append fails with [ErrIDReused]. An event
	// with a zero ID gets a fresh one.
	//
	// With [Event.Expect] set, the event's (tenant, subject) stream must
	// hold exactly that many events first, counting the events before it in
	// the same call, or Append fails with a [*ConflictError] (wrapping
	// [ErrConflict]) and writes nothing of the call.
	//
	// Invalid events (see [ValidateAppend]) fail with [ErrInvalid] and
	// nothing written. After Close, Append fails with [ErrClosed].
	//
	// Concurrent calls may be committed together (group commit); each call
	// still succeeds or fails on its own.
	Append(ctx context.Context, events ...Event) ([]uint64, error)

	// Read yields the events from position from on (0 and 1 both mean the
	// first), in order, at most limit of them (0: no limit). It sees events
	// committed while it runs. A failure is yielded as an error and ends
	// the iteration; a damaged event wraps [ErrCorrupt].
	Read(from uint64, limit int) iter.Seq2[Envelope, error]

	// ReadSubject yields the events of one (tenant, subject) stream from
	// global position from on, in order.
	ReadSubject(tenant, subject string, from uint64) iter.Seq2[Envelope, error]

	// StreamVersion returns how many events the (tenant, subject) stream
	// holds and the position of its last one: what [ExpectVersion]
	// compares against.
	StreamVersion(tenant, subject string) (version, last uint64, err error)

	// Head returns the position of the last committed event, 0 for an
	// empty log. A backend shared by several processes (etcd) asks the
	// cluster; if it cannot, it returns the last position it has seen.
	Head() uint64

	// NewID returns a fresh ULID, monotonic within the Log. A caller that
	// names an event before appending it (to use it as a causation, or to
	// retry an append idempotently) takes it from here.
	NewID() ulid.ULID

	// Subscribe delivers every event from position from on (0 or 1 for the
	// whole log), in order, with no gap and no duplicate: first those
	// already stored, then new ones as they are committed (by this process
	// or, for a shared backend, any other), until ctx ends, the Log closes
	// or a read fails; [Subscription.Err] then tells which. A subscriber
	// that reads slowly never slows appends (invariant I8).
	Subscribe(ctx context.Context, from uint64) *Subscription

	// SaveSnapshot stores state as the result of folding the log up to and
	// including position pos, durably. pos must not be beyond the head
	// ([ErrInvalid]). The Log does not interpret state. It keeps the
	// newest two snapshots.
	SaveSnapshot(pos uint64, state []byte) error

	// LoadSnapshot returns the newest snapshot and the position it was
	// folded up to, or [ErrNoSnapshot]. A caller folds the events after
	// pos on top.
	LoadSnapshot() (pos uint64, state []byte, err error)

	// Check verifies the whole log: positions 1..head with no gap, every
	// event decodes with a good checksum and carries its own position,
	// every id and stream entry points at its event, stream versions add
	// up. Problems are reported as a [*CheckError] (wrapping ErrCorrupt).
	Check(ctx context.Context) (CheckReport, error)

	// Backup writes a consistent copy of the log to w, as a bbolt file that
	// [Open] and [CheckFile] accept (a single machine can start from it),
	// while the Log stays open. It returns the bytes written.
	Backup(w io.Writer) (int64, error)

	// Stats returns counters since the Log was opened.
	Stats() Stats

	// Close stops accepting appends, waits for the ones in flight, ends
	// every subscription and releases the backend. It is idempotent.
	Close() error
}

var _ Log = (*Store)(nil)

// ValidateAppend checks one Append call: at most maxBatch events, each event within the size limits with a type and valid JSON
// data, and no id twice. Its errors wrap [ErrInvalid] and name the field.
// Every backend runs it before it writes anything.
func ValidateAppend(events []Event, maxBatch int) error {
	if len(events) > maxBatch {
		return fmt.Errorf("%w: %d events in one append, limit %d", ErrInvalid, len(events), maxBatch)
	}
	seen := make(map[ulid.ULID]struct{}, len(events))
	for i := range events {
		if err := validate(&events[i]); err != nil {
			return fmt.Errorf("append event %d: %w", i, err)
		}
		if id := events[i].ID; id != (ulid.ULID{}) {
			if _, dup := seen[id]; dup {
				return fmt.Errorf("append event %d: %w: id %s appears twice in one call", i, ErrInvalid, id)
			}
			seen[id] = struct{}{}
		}
	}
	return nil
}

// EncodeEnvelope appends the stored form of env to buf: the compact binary
// form with a CRC-32C described in the package doc. Backends store events
// in this one form.
func EncodeEnvelope(buf []byte, env *Envelope) []byte { return encode(buf, env) }

// DecodeEnvelope reads an envelope in the form [EncodeEnvelope] writes. A
// bad checksum or a truncated record is an error (the caller wraps it in
// [ErrCorrupt]).
func DecodeEnvelope(b []byte, env *Envelope) error { return decode(b, env) }

// AppendStreamKey appends the key of the (tenant, subject) stream to buf:
// length-prefixed tenant and subject, so that no separator can be forged by
// a name and no stream's key is a prefix of another's. Backends index
// streams by it.
func AppendStreamKey(buf []byte, tenant, subject string) []byte {
	return streamKey(buf, tenant, subject)
}

// NewSubscription returns a subscription fed by feed, which runs in its own
// goroutine and sends events on out in position order, never blocking
// anything but itself. When feed returns, the subscription ends: its
// channel is closed and [Subscription.Err] returns feed's error. A backend
// builds its [Log.Subscribe] on it.
func NewSubscription(feed func(out chan<- Envelope) error) *Subscription {
	sub := &Subscription{c: make(chan Envelope), done: make(chan struct{})}
	go func() {
		sub.err = feed(sub.c)
		close(sub.done)
		close(sub.c)
	}()
	return sub
}
