package kernel

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"sync"
	"time"
)

// ProtocolVersion is the Jupyter messaging protocol version this package
// speaks.
const ProtocolVersion = "5.3"

// delimiter separates the routing identities from the message parts.
var delimiter = []byte("<IDS|MSG>")

// Header is a message header (and a parent header).
type Header struct {
	MsgID    string `json:"msg_id"`
	Session  string `json:"session"`
	Username string `json:"username"`
	Date     string `json:"date"`
	MsgType  string `json:"msg_type"`
	Version  string `json:"version"`
}

// Message is one Jupyter message. Content and Metadata are JSON; a nil one
// is sent as {}.
type Message struct {
	Identities [][]byte
	Header     Header
	// Parent is the header of the request this message answers; its MsgID
	// is "" for a message that answers none.
	Parent   Header
	Metadata json.RawMessage
	Content  json.RawMessage
	Buffers  [][]byte
}

// NewMessage returns a request of type msgType in session, with a fresh
// msg_id and the current time, and content encoded as JSON.
func NewMessage(session, msgType string, content any) (*Message, error) {
	c, err := json.Marshal(content)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", msgType, err)
	}
	return &Message{
		Header: Header{
			MsgID: newID(), Session: session, Username: "solo", MsgType: msgType,
			Date: time.Now().UTC().Format(time.RFC3339Nano), Version: ProtocolVersion,
		},
		Content: c,
	}, nil
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Signer signs and verifies messages with a connection's key
// (HMAC-SHA256). It is safe for concurrent use.
type Signer struct {
	pool sync.Pool // of hash.Hash
}

// NewSigner returns a signer for key, the key of a connection file (used
// as bytes, as Jupyter does: the hex string itself is the key).
func NewSigner(key string) *Signer {
	k := []byte(key)
	s := &Signer{}
	s.pool.New = func() any { return hmac.New(sha256.New, k) }
	return s
}

// Sign returns the hex signature of the four signed parts.
func (s *Signer) Sign(parts ...[]byte) []byte {
	h := s.pool.Get().(hash.Hash)
	defer s.pool.Put(h)
	h.Reset()
	for _, p := range parts {
		h.Write(p)
	}
	sum := h.Sum(nil)
	out := make([]byte, hex.EncodedLen(len(sum)))
	hex.Encode(out, sum)
	return out
}

// Encode returns the frames of m: identities, delimiter, signature, header,
// parent header, metadata, content, buffers.
func (s *Signer) Encode(m *Message) ([][]byte, error) {
	header, err := json.Marshal(m.Header)
	if err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	parent := []byte("{}")
	if m.Parent.MsgID != "" {
		if parent, err = json.Marshal(m.Parent); err != nil {
			return nil, fmt.Errorf("encode parent header: %w", err)
		}
	}
	meta, content := orEmpty(m.Metadata), orEmpty(m.Content)
	frames := make([][]byte, 0, len(m.Identities)+6+len(m.Buffers))
	frames = append(frames, m.Identities...)
	frames = append(frames, delimiter, s.Sign(header, parent, meta, content), header, parent, meta, content)
	frames = append(frames, m.Buffers...)
	return frames, nil
}

func orEmpty(b json.RawMessage) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

// Decode parses frames into a message. The signature is checked first,
// with a constant-time compare, over the raw parts: a message that does not
// verify returns [ErrBadSignature] and none of it is decoded.
func (s *Signer) Decode(frames [][]byte) (*Message, error) {
	i := 0
	for i < len(frames) && !bytes.Equal(frames[i], delimiter) {
		i++
	}
	if i == len(frames) {
		return nil, fmt.Errorf("%w: no delimiter", ErrMalformed)
	}
	if len(frames) < i+6 {
		return nil, fmt.Errorf("%w: %d parts after the delimiter, want at least 5", ErrMalformed, len(frames)-i-1)
	}
	sig, header, parent, meta, content := frames[i+1], frames[i+2], frames[i+3], frames[i+4], frames[i+5]
	if !hmac.Equal(sig, s.Sign(header, parent, meta, content)) {
		return nil, ErrBadSignature
	}
	m := &Message{Identities: frames[:i], Metadata: meta, Content: content, Buffers: frames[i+6:]}
	if err := json.Unmarshal(header, &m.Header); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if err := json.Unmarshal(parent, &m.Parent); err != nil {
		return nil, fmt.Errorf("%w: parent header: %w", ErrMalformed, err)
	}
	return m, nil
}
