package kernel

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSigner_Sign(t *testing.T) {
	// python3 -c 'import hmac,hashlib; print(hmac.new(b"key", b"abcd", hashlib.sha256).hexdigest())'
	const want = "2a31ec0ee8d878c9eece9fb0df79b3b90b2256240163aa5ee50d176d3d1121f8"
	s := NewSigner("key")
	assert.Equal(t, want, string(s.Sign([]byte("a"), []byte("b"), []byte("c"), []byte("d"))), "the signature is the hex HMAC-SHA256 of the parts in order")
	assert.Equal(t, want, string(s.Sign([]byte("ab"), []byte("cd"))))
	assert.NotEqual(t, want, string(NewSigner("other").Sign([]byte("abcd"))))
}

func TestSigner_EncodeDecode(t *testing.T) {
	s := NewSigner("k3y")
	m, err := NewMessage("sess", "execute_request", map[string]string{"code": "1+1"})
	require.NoError(t, err)
	m.Identities = [][]byte{[]byte("id1")}
	m.Parent = Header{MsgID: "p1", MsgType: "kernel_info_request"}
	m.Buffers = [][]byte{[]byte("buf")}
	frames, err := s.Encode(m)
	require.NoError(t, err)

	t.Run("round trip", func(t *testing.T) {
		got, err := s.Decode(frames)
		require.NoError(t, err)
		assert.Equal(t, m.Header, got.Header)
		assert.Equal(t, m.Parent, got.Parent)
		assert.Equal(t, [][]byte{[]byte("id1")}, got.Identities)
		assert.Equal(t, [][]byte{[]byte("buf")}, got.Buffers)
		var c map[string]string
		require.NoError(t, json.Unmarshal(got.Content, &c))
		assert.Equal(t, "1+1", c["code"])
	})
	t.Run("tampered content is rejected", func(t *testing.T) {
		bad := clone(frames)
		bad[len(bad)-2] = []byte(`{"code":"import os"}`)
		_, err := s.Decode(bad)
		assert.True(t, errors.Is(err, ErrBadSignature), "%v", err)
	})
	t.Run("tampered header is rejected", func(t *testing.T) {
		bad := clone(frames)
		bad[3] = []byte(`{"msg_type":"shutdown_request"}`)
		_, err := s.Decode(bad)
		assert.True(t, errors.Is(err, ErrBadSignature), "%v", err)
	})
	t.Run("other key is rejected", func(t *testing.T) {
		_, err := NewSigner("wrong").Decode(frames)
		assert.True(t, errors.Is(err, ErrBadSignature), "%v", err)
	})
	t.Run("missing signature is rejected", func(t *testing.T) {
		bad := clone(frames)
		bad[2] = nil
		_, err := s.Decode(bad)
		assert.True(t, errors.Is(err, ErrBadSignature), "%v", err)
	})
	t.Run("no delimiter", func(t *testing.T) {
		_, err := s.Decode([][]byte{[]byte("a"), []byte("b")})
		assert.True(t, errors.Is(err, ErrMalformed), "%v", err)
	})
	t.Run("too few parts", func(t *testing.T) {
		_, err := s.Decode(frames[:5])
		assert.True(t, errors.Is(err, ErrMalformed), "%v", err)
	})
}

func clone(f [][]byte) [][]byte { return append([][]byte(nil), f...) }
