package eventstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// The stored form of an envelope, version 1:
//
//	[0]      format version (1)
//	[1:9]    pos, big endian
//	[9:25]   id (ULID, 16 bytes)
//	[25:33]  time, Unix nanoseconds, big endian
//	then     type, tenant, subject, causation, actor, data: each a uvarint length and the bytes
//	[n-4:n]  CRC-32C (Castagnoli) of everything before it
//
// The five strings are adjacent so that decoding makes one string allocation
// for all of them and one for the payload.
const (
	formatV1   = 1
	headerLen  = 1 + 8 + 16 + 8
	trailerLen = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errShortRecord = errors.New("record too short")

func encodedLen(env *Envelope) int {
	n := headerLen + trailerLen
	for _, f := range [...]int{len(env.Type), len(env.Tenant), len(env.Subject), len(env.Causation), len(env.Actor), len(env.Data)} {
		n += uvarintLen(uint64(f)) + f
	}
	return n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// encode appends the stored form of env to buf.
func encode(buf []byte, env *Envelope) []byte {
	buf = append(buf, formatV1)
	buf = binary.BigEndian.AppendUint64(buf, env.Pos)
	buf = append(buf, env.ID[:]...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(env.Time.UnixNano()))
	for _, s := range [...]string{env.Type, env.Tenant, env.Subject, env.Causation, env.Actor} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.AppendUvarint(buf, uint64(len(env.Data)))
	buf = append(buf, env.Data...)
	return binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

// decode parses a stored envelope. It copies everything it keeps, so b may
// be memory owned by a bbolt transaction.
func decode(b []byte, env *Envelope) error {
	if len(b) < headerLen+trailerLen {
		return errShortRecord
	}
	body, sum := b[:len(b)-trailerLen], binary.BigEndian.Uint32(b[len(b)-trailerLen:])
	if crc32.Checksum(body, castagnoli) != sum {
		return errors.New("checksum mismatch")
	}
	if body[0] != formatV1 {
		return fmt.Errorf("unknown record format %d", body[0])
	}
	env.Pos = binary.BigEndian.Uint64(body[1:9])
	copy(env.ID[:], body[9:25])
	env.Time = time.Unix(0, int64(binary.BigEndian.Uint64(body[25:33]))).UTC()

	// Find the five strings, then allocate them as one.
	rest := body[headerLen:]
	var bounds [5][2]int
	off := 0
	for i := range bounds {
		n, k := binary.Uvarint(rest[off:])
		if k <= 0 || uint64(len(rest)-off-k) < n {
			return errShortRecord
		}
		off += k
		bounds[i] = [2]int{off, off + int(n)}
		off += int(n)
	}
	strs := string(rest[bounds[0][0]:bounds[4][1]])
	base := bounds[0][0]
	field := func(i int) string {
		s := bounds[i][0] - base
		e := bounds[i][1] - base
		if s == e {
			return ""
		}
		return strs[s:e]
	}
	env.Type, env.Tenant, env.Subject, env.Causation, env.Actor = field(0), field(1), field(2), field(3), field(4)
	// The varint lengths between the strings are inside strs too; that is a
	// few bytes per event, cheaper than five allocations.

	n, k := binary.Uvarint(rest[off:])
	if k <= 0 || uint64(len(rest)-off-k) != n {
		return errShortRecord
	}
	off += k
	if n == 0 {
		env.Data = nil
	} else {
		env.Data = append([]byte(nil), rest[off:off+int(n)]...)
	}
	return nil
}
