package capability

import (
	"encoding/binary"
	"errors"
	"time"
)

// The stored record, the value under a token's hash in the tokens bucket.
// It is a small binary form rather than JSON because [Open] decodes every
// token at start-up, and it never holds the plaintext or the hash:
//
//	version    byte (1)
//	id         16 bytes (binary ULID)
//	tenant     uvarint length + bytes
//	scopes     byte (bit set, bit i = allScopes[i])
//	services   uvarint length + bytes
//	actor      uvarint length + bytes
//	created    varint unix nanoseconds
//	expires    varint unix nanoseconds
//	revoked    varint unix nanoseconds, 0 = not revoked
const recordV1 = 1

// maxField bounds a stored string, so a damaged length cannot make a
// decode allocate much.
const maxField = 1024

var errRecord = errors.New("damaged token record")

func encodeRecord(e *entry) []byte {
	b := make([]byte, 0, 1+16+len(e.tenant)+1+len(e.services)+len(e.actor)+6*binary.MaxVarintLen64)
	b = append(b, recordV1)
	b = append(b, e.id[:]...)
	b = appendString(b, e.tenant)
	b = append(b, byte(e.set))
	b = appendString(b, e.services)
	b = appendString(b, e.actor)
	b = binary.AppendVarint(b, e.created)
	b = binary.AppendVarint(b, e.expires)
	b = binary.AppendVarint(b, e.revoked)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// unixNano is the stored form of a time; 0 stands for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// decoder reads records. intern, when not nil, shares the strings that
// repeat across tokens (tenants, patterns, actors) during a restore; the
// empty string never needs it.
type decoder struct {
	intern map[string]string
}

// decode fills e (all but its hash) from a record.
func (d *decoder) decode(b []byte, e *entry) error {
	if len(b) < 1+16 || b[0] != recordV1 {
		return errRecord
	}
	copy(e.id[:], b[1:17])
	r := b[17:]
	var ok bool
	if e.tenant, r, ok = d.str(r); !ok || len(r) < 1 {
		return errRecord
	}
	e.set, r = scopeSet(r[0]), r[1:]
	if e.set == 0 || e.set&^allScopeBits != 0 {
		return errRecord
	}
	if e.services, r, ok = d.str(r); !ok {
		return errRecord
	}
	if e.actor, r, ok = d.str(r); !ok {
		return errRecord
	}
	for _, p := range [...]*int64{&e.created, &e.expires, &e.revoked} {
		v, n := binary.Varint(r)
		if n <= 0 {
			return errRecord
		}
		*p, r = v, r[n:]
	}
	if len(r) != 0 || e.expires == 0 {
		return errRecord
	}
	return nil
}

func (d *decoder) str(b []byte) (string, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxField || uint64(len(b)-k) < n {
		return "", nil, false
	}
	raw := b[k : k+int(n)]
	if d.intern == nil || n == 0 {
		return string(raw), b[k+int(n):], true
	}
	s, ok := d.intern[string(raw)] // no allocation for the lookup
	if !ok {
		s = string(raw)
		d.intern[s] = s
	}
	return s, b[k+int(n):], true
}
