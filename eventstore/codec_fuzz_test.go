package eventstore

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"reflect"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// The stored envelope is the one format every read of the log goes
// through, and a damaged file hands decode arbitrary bytes. These fuzzers
// check that decode never panics, that it reads back exactly what encode
// wrote, and that the CRC-32C catches any one damaged byte.

// FuzzDecode feeds decode arbitrary records. A random record almost never
// carries a matching checksum, so each input is also decoded once more
// with its checksum recomputed ("sealed"): that reaches the parser behind
// the checksum, as a record written by a buggy or hostile writer would.
func FuzzDecode(f *testing.F) {
	for _, env := range seedEnvelopes() {
		enc := encode(nil, &env)
		f.Add(enc)
		f.Add(enc[:len(enc)-trailerLen]) // its body: sealed, it is the same record
	}
	f.Add([]byte{})
	f.Add([]byte{formatV1})
	f.Add(make([]byte, headerLen+trailerLen))
	// A string length far past the end of the record.
	f.Add(append(append([]byte{formatV1}, make([]byte, headerLen-1)...), 0xff, 0xff, 0xff, 0xff, 0x0f))
	// A uvarint that overflows 64 bits.
	f.Add(append(append([]byte{formatV1}, make([]byte, headerLen-1)...), bytes.Repeat([]byte{0xff}, 11)...))

	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecoded(t, "raw", b)
		sealed := binary.BigEndian.AppendUint32(bytes.Clone(b), crc32.Checksum(b, castagnoli))
		checkDecoded(t, "sealed", sealed)
	})
}

// checkDecoded decodes b; if that succeeds, the envelope must survive
// another encode and decode unchanged. (b itself need not be what encode
// writes: a uvarint may be padded.)
func checkDecoded(t *testing.T, what string, b []byte) {
	t.Helper()
	var env Envelope
	if err := decode(b, &env); err != nil {
		if err.Error() == "" {
			t.Fatalf("%s: decode failed with an empty error", what)
		}
		return
	}
	if b[0] != formatV1 {
		t.Fatalf("%s: decode accepted record format %d", what, b[0])
	}
	enc := encode(nil, &env)
	if len(enc) != encodedLen(&env) {
		t.Fatalf("%s: encode wrote %d bytes, encodedLen says %d", what, len(enc), encodedLen(&env))
	}
	if len(enc) > len(b) {
		t.Fatalf("%s: re-encoding %d bytes gave %d: decode invented data", what, len(b), len(enc))
	}
	var again Envelope
	if err := decode(enc, &again); err != nil {
		t.Fatalf("%s: decode(encode(decode(b))): %v", what, err)
	}
	if !reflect.DeepEqual(env, again) {
		t.Fatalf("%s: decode(encode(x)) != x\n x    = %+v\n got  = %+v", what, env, again)
	}
}

// FuzzEncodeDecode builds an envelope from fuzzed fields and checks that
// decode(encode(x)) == x, and that flipping any bits of one byte, or
// cutting the record short, is refused. CRC-32C detects every error burst
// of up to 32 bits, so a damaged byte must always be an error, never a
// different envelope.
func FuzzEncodeDecode(f *testing.F) {
	for _, env := range seedEnvelopes() {
		f.Add(env.Pos, env.ID[:], env.Time.UnixNano(), env.Type, env.Tenant, env.Subject, env.Causation, env.Actor, []byte(env.Data), uint(7), byte(0x01))
	}
	f.Add(uint64(0), []byte{}, int64(0), "", "", "", "", "", []byte{}, uint(0), byte(0))
	f.Add(^uint64(0), bytes.Repeat([]byte{0xff}, 16), int64(-1<<63), "x", "\x00", "\xff\xfe", "", "", bytes.Repeat([]byte{0x80}, 200), uint(1<<20), byte(0xff))

	f.Fuzz(func(t *testing.T, pos uint64, id []byte, nanos int64, typ, tenant, subject, causation, actor string, data []byte, at uint, mask byte) {
		env := Envelope{
			Pos: pos, Time: time.Unix(0, nanos).UTC(),
			Type: typ, Tenant: tenant, Subject: subject, Causation: causation, Actor: actor,
		}
		copy(env.ID[:], id)
		if len(data) > 0 {
			env.Data = data // decode gives nil for an empty payload
		}

		enc := encode(nil, &env)
		if len(enc) != encodedLen(&env) {
			t.Fatalf("encode wrote %d bytes, encodedLen says %d", len(enc), encodedLen(&env))
		}
		var got Envelope
		if err := decode(enc, &got); err != nil {
			t.Fatalf("decode(encode(x)): %v", err)
		}
		if !reflect.DeepEqual(env, got) {
			t.Fatalf("decode(encode(x)) != x\n x   = %+v\n got = %+v", env, got)
		}

		if mask == 0 {
			mask = 0x80
		}
		i := int(at % uint(len(enc)))
		damaged := bytes.Clone(enc)
		damaged[i] ^= mask
		if err := decode(damaged, &got); err == nil {
			t.Fatalf("byte %d of %d xor %#02x: decode accepted the damaged record as %+v", i, len(enc), mask, got)
		}
		if err := decode(enc[:i], &got); err == nil {
			t.Fatalf("record cut to %d of %d bytes: decode accepted it as %+v", i, len(enc), got)
		}
	})
}

// seedEnvelopes are envelopes as the runtime writes them.
func seedEnvelopes() []Envelope {
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	return []Envelope{
		{
			Pos: 1, ID: ulid.MustParse("01JNCZ2Z8M4Q6X0R3T5V7W9Y1A"), Time: at,
			Type: "service_deployed", Tenant: "default", Subject: "web", Actor: "local",
			Data: []byte(`{"spec":{"tenant":"default","name":"web","command":["python3","-m","http.server","8080"],"env":{"PORT":"8080"},"restart":"always","max_restarts":5,"restart_window":"1m0s","stop_signal":"SIGTERM","stop_timeout":"10s"},"generation":1}`),
		},
		{
			Pos: 2, ID: ulid.MustParse("01JNCZ2Z8N0000000000000000"), Time: at.Add(time.Millisecond),
			Type: "service_started", Tenant: "default", Subject: "web", Causation: "01JNCZ2Z8M4Q6X0R3T5V7W9Y1A",
			Data: []byte(`{"generation":1,"pid":4242,"start_time":123456,"boot_id":"0f6e7c1e-2b1d-4c1a-9d7e-3f2a1b0c9d8e"}`),
		},
		{Pos: 3, ID: ulid.MustParse("01JNCZ2Z8P0000000000000000"), Time: at.Add(2 * time.Millisecond), Type: "system_started"},
	}
}
