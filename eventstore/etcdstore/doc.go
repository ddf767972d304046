// Package etcdstore is Solo's event log on etcd, for cluster mode: the same
// [eventstore.Log] as the bbolt store, held to the same contract (package
// eventstore/storetest), with every event replicated by etcd's Raft.
//
// # Usage
//
//	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints})
//	s, err := etcdstore.Open(cli, &etcdstore.Options{Prefix: "/solo/log/"})
//	defer s.Close() // the client stays the caller's
//	pos, err := s.Append(ctx, eventstore.Event{...})
//
// # Keys
//
// Everything lives under [Options.Prefix] (P):
//
//	P head                  the last position (8 bytes, big endian)
//	P e/<pos>               the event at pos, in eventstore's stored form
//	P i/<id>                an event's id -> its pos
//	P s/<stream>            a stream's version and last pos (8 + 8 bytes)
//	P x/<stream><pos>       the stream index: one empty key per event
//	P snap/<pos>            a snapshot folded up to pos
//
// where <pos> is 8 bytes big endian and <stream> is
// [eventstore.AppendStreamKey]'s form (no stream's key is a prefix of
// another's).
//
// # Positions
//
// Positions come from the head key, not from etcd's revisions: a revision
// counts every write to the whole keyspace (leases, elections, tokens, other
// prefixes), so positions derived from it would have gaps. Each commit is
// one Txn that compares the head key's mod revision with the one the
// committer last saw and, in the same Txn, writes the events at head+1...
// and the new head. Two writers (two nodes) cannot both succeed from the
// same head: the loser's Txn fails its compare, it reads the new state and
// tries again. Positions are therefore gapless and in commit order.
//
// # Acknowledged means committed (I1)
//
// Append returns positions only from a Txn that etcd reported as
// succeeded: applied by a quorum of members. Every other outcome is an
// error; when etcd did not answer (no quorum, a timeout) the error wraps
// [eventstore.ErrUnavailable] and the outcome is unknown. Every event has
// its id before the first try (a fresh one if the caller gave none), so a
// retry of the same events is idempotent.
//
// # Group commit
//
// As in the bbolt store, appends go to one committer goroutine, which takes
// the first waiting request and every request already queued behind it, up
// to the Txn limits ([Options.MaxTxnOps], [Options.MaxRequestBytes]), and
// commits them in one Txn: one Raft round for the group. The committer
// keeps the head's mod revision and the versions of the streams it wrote;
// while nobody else writes, a commit is a single round trip. The Txn also
// compares that each id is absent, and when any compare fails it reads back
// the head, the ids and the streams in the same round trip (the Txn's else
// branch). Checks (expected versions, reused ids) run against that state,
// so a request that fails them fails alone and the others commit.
//
// # Subscriptions
//
// A subscription reads the events from its position in pages (the last
// page at some revision R), then watches the events' prefix from R+1: no
// event committed after R is missed, none read is delivered twice (it
// tracks the next position it owes, so a watch restarted after a leader
// change, a compaction or a fall-behind resumes exactly there). Its live
// buffer is bounded ([Options.SubscriberBuffer]); a subscriber that fills
// it drops its watch and reads what it missed from the store (invariant
// I8). A subscription rides over an unavailable cluster: it retries, with
// backoff, until its context ends or the store closes.
//
// # Caveats
//
//   - One Append call holds at most [Store.MaxBatch] events: (MaxTxnOps-1)/4,
//     each event being up to four writes (event, id, index, stream head).
//     With etcd's default --max-txn-ops of 128 that is 31; a cluster
//     that Solo runs raises it (see Options).
//   - etcd counts every key of a range it serves, limit or not. Reads of
//     the log therefore ask for exact windows of positions, never for an
//     open range with a limit (which would make a replay cost the square of
//     the log's length). ReadSubject still pages through the rest of its
//     stream's index: its cost grows with the square of the stream's
//     length, not the log's.
//   - A snapshot is one key: it must fit in [Options.MaxRequestBytes].
//   - Backup writes a bbolt file of the log (see [Store.Backup]); etcd's
//     own snapshots (etcdctl snapshot save) back up the whole cluster.
//   - Nothing is ever deleted but old snapshots; compaction of etcd's
//     history (which drops old revisions, not current keys) is safe.
package etcdstore
