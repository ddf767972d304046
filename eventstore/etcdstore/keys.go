package etcdstore

import (
	"encoding/binary"

	"github.com/oklog/ulid/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/solo-rt/solo/eventstore"
)

type kvType = mvccpb.KeyValue

// opsPerEvent is the most writes one event costs in a Txn: the event, its
// id, its stream index entry, and its stream's head.
const opsPerEvent = 4

// keys are the log's key names under its prefix (see the package doc).
type keys struct {
	head, events, eventsEnd, ids, streams, index, snaps, snapsEnd string
}

func newKeys(prefix string) keys {
	k := keys{
		head:    prefix + "head",
		events:  prefix + "e/",
		ids:     prefix + "i/",
		streams: prefix + "s/",
		index:   prefix + "x/",
		snaps:   prefix + "snap/",
	}
	k.eventsEnd = clientv3.GetPrefixRangeEnd(k.events)
	k.snapsEnd = clientv3.GetPrefixRangeEnd(k.snaps)
	return k
}

func be(pos uint64) string { return string(binary.BigEndian.AppendUint64(nil, pos)) }

func (k keys) event(pos uint64) string { return k.events + be(pos) }

func (k keys) id(id ulid.ULID) string { return k.ids + string(id[:]) }

func (k keys) snap(pos uint64) string { return k.snaps + be(pos) }

// stream is the stream's key in eventstore's form; streamHead and
// indexEntry are its keys here.
func stream(tenant, subject string) string {
	return string(eventstore.AppendStreamKey(nil, tenant, subject))
}

func (k keys) streamHead(sk string) string { return k.streams + sk }

func (k keys) indexEntry(sk string, pos uint64) string { return k.index + sk + be(pos) }

// headValue is a stream head's value: version, then last position.
func headValue(h streamHead) string {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), h.version)
	return string(binary.BigEndian.AppendUint64(b, h.last))
}

func parseStreamHead(v []byte) (streamHead, bool) {
	if len(v) != 16 {
		return streamHead{}, false
	}
	return streamHead{binary.BigEndian.Uint64(v[:8]), binary.BigEndian.Uint64(v[8:])}, true
}

// keyPos is the position at the end of an event, index or snapshot key.
func keyPos(key []byte) (uint64, bool) {
	if len(key) < 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[len(key)-8:]), true
}
