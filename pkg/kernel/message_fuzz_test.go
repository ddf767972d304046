package kernel

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecode checks [Signer.Decode], which reads every frame a kernel
// sends:
//
//   - arbitrary frames never panic, and anything but a valid message is
//     ErrMalformed or ErrBadSignature;
//   - frames signed with the key whose header and parent are any bytes at
//     all (what a kernel could send) decode, or fail with ErrMalformed;
//     what decodes survives Encode and Decode again unchanged;
//   - a message encoded with the key decodes to itself;
//   - changing, cutting or extending any signed frame, or the
//     signature, is refused with ErrBadSignature.
//
// The frames of one input are split on "|"; see [splitFrames].
func FuzzDecode(f *testing.F) {
	header := []byte(`{"msg_id":"6f1c0d2a9b8e4f3a","session":"sess","username":"solo","date":"2025-03-01T12:00:00.123Z","msg_type":"execute_reply","version":"5.3"}`)
	parent := []byte(`{"msg_id":"a1b2c3","session":"sess","username":"solo","date":"2025-03-01T12:00:00Z","msg_type":"execute_request","version":"5.3"}`)
	content := []byte(`{"status":"ok","execution_count":1,"user_expressions":{}}`)
	f.Add("0b7c2b6a-8ad6-4d34-9f7c-5c2b0e8e1a3f", []byte("id1|<IDS|MSG>|sig|{}|{}|{}|{}"), header, parent, []byte(`{}`), content, uint(2), byte(1))
	f.Add("", []byte("<IDS|MSG>"), []byte(`{}`), []byte(`{}`), []byte(nil), []byte(nil), uint(0), byte(0x20))
	f.Add("k", []byte("no delimiter"), []byte(`null`), []byte(`{"msg_id":""}`), []byte(`[]`), []byte(`not json`), uint(4), byte(0xff))
	f.Add("k3y", []byte{}, []byte(`{"msg_id":1}`), []byte(`{`), []byte(`{}`), []byte(`{"code":"1+1"}`), uint(3), byte(0x80))
	f.Add("k3y", []byte("a|b|<IDS|MSG>"), []byte("\xff\xfe"), []byte(`{"msg_type":"\u0000"}`), []byte(`{}`), []byte(`{}`), uint(5), byte(2))

	f.Fuzz(func(t *testing.T, key string, raw, header, parent, meta, content []byte, at uint, mask byte) {
		s := NewSigner(key)

		// Arbitrary frames.
		if m, err := s.Decode(splitFrames(raw)); err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Decode of arbitrary frames: %v is neither ErrMalformed nor ErrBadSignature", err)
			}
		} else {
			checkReencodes(t, s, m)
		}

		// Frames a kernel holding the key could send: any parts, signed.
		signed := [][]byte{delimiter, s.Sign(header, parent, meta, content), header, parent, meta, content}
		m, err := s.Decode(signed)
		switch {
		case err == nil:
			if !bytes.Equal(m.Metadata, meta) || !bytes.Equal(m.Content, content) {
				t.Fatalf("Decode changed metadata or content: %q %q", m.Metadata, m.Content)
			}
			checkReencodes(t, s, m)
		case errors.Is(err, ErrMalformed):
			var h, p Header
			if json.Unmarshal(header, &h) == nil && json.Unmarshal(parent, &p) == nil {
				t.Fatalf("Decode refused headers that decode: %v", err)
			}
		default:
			t.Fatalf("Decode of frames signed with the key: %v", err)
		}

		// A message of ours, as Encode writes it, round-trips. Headers
		// decoded from JSON hold valid UTF-8, as any header we send does.
		var h, p Header
		if json.Unmarshal(header, &h) != nil {
			h = Header{MsgID: "6f1c0d2a", Session: "sess", MsgType: "execute_request", Version: ProtocolVersion}
		}
		if json.Unmarshal(parent, &p) != nil {
			p = Header{}
		}
		msg := &Message{
			Identities: [][]byte{[]byte("routing-id")},
			Header:     h, Parent: p,
			Metadata: jsonOrNil(meta), Content: jsonOrNil(content),
			Buffers: [][]byte{raw},
		}
		frames, err := s.Encode(msg)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		got, err := s.Decode(frames)
		if err != nil {
			t.Fatalf("Decode(Encode(m)): %v", err)
		}
		if want := normalized(msg); !reflect.DeepEqual(got, want) {
			t.Fatalf("Decode(Encode(m)) != m\n m   = %+v\n got = %+v", want, got)
		}

		// Tamper with the signature or one signed frame: frames are the
		// identity, the delimiter, then the signature at 2 and header,
		// parent, metadata and content at 3 to 6.
		i := 2 + int(at%5)
		if mask == 0 {
			mask = 0x01
		}
		for _, tampered := range [][]byte{
			flipByte(frames[i], int(at/5), mask),
			frames[i][:len(frames[i])-1],
			append(bytes.Clone(frames[i]), mask),
		} {
			bad := append([][]byte(nil), frames...)
			bad[i] = tampered
			if _, err := s.Decode(bad); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("frame %d changed from %q to %q: Decode gave %v, want ErrBadSignature", i, frames[i], tampered, err)
			}
		}
		if _, err := NewSigner(key + "x").Decode(frames); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Decode with another key: %v, want ErrBadSignature", err)
		}
	})
}

// splitFrames cuts raw on '|' so that the fuzzer can write multipart
// messages as text; "<IDS|MSG>" stays whole.
func splitFrames(raw []byte) [][]byte {
	const mark = "\x00DELIM\x00"
	raw = bytes.ReplaceAll(raw, delimiter, []byte(mark))
	parts := bytes.Split(raw, []byte("|"))
	for i, p := range parts {
		parts[i] = bytes.ReplaceAll(p, []byte(mark), delimiter)
	}
	return parts
}

// checkReencodes encodes a decoded message again and checks that it
// decodes to the same message.
func checkReencodes(t *testing.T, s *Signer, m *Message) {
	t.Helper()
	for _, id := range m.Identities {
		if bytes.Equal(id, delimiter) {
			t.Fatalf("Decode returned the delimiter as an identity")
		}
	}
	frames, err := s.Encode(m)
	if err != nil {
		t.Fatalf("Encode of a decoded message: %v", err)
	}
	again, err := s.Decode(frames)
	if err != nil {
		t.Fatalf("Decode(Encode(Decode(frames))): %v", err)
	}
	if want := normalized(m); !reflect.DeepEqual(again, want) {
		t.Fatalf("Decode(Encode(m)) != m\n m   = %+v\n got = %+v", want, again)
	}
}

// normalized is m as Decode(Encode(m)) returns it: empty metadata and
// content are sent as {}, and a parent without a msg_id as {}.
func normalized(m *Message) *Message {
	n := *m
	n.Metadata = orEmpty(m.Metadata)
	n.Content = orEmpty(m.Content)
	if n.Parent.MsgID == "" {
		n.Parent = Header{}
	}
	if len(n.Identities) == 0 {
		n.Identities = [][]byte{}
	}
	if n.Buffers == nil {
		n.Buffers = [][]byte{}
	}
	return &n
}

func jsonOrNil(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	return nil
}

func flipByte(b []byte, i int, mask byte) []byte {
	out := bytes.Clone(b)
	if len(out) == 0 {
		return []byte{mask}
	}
	out[i%len(out)] ^= mask
	return out
}
