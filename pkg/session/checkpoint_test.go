package session

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckpoint_ReadWrite(t *testing.T) {
	dir := t.TempDir()
	key, err := loadKey(filepath.Join(dir, "key"))
	require.NoError(t, err)
	st, err := os.Stat(filepath.Join(dir, "key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	again, err := loadKey(filepath.Join(dir, "key"))
	require.NoError(t, err)
	assert.Equal(t, key, again, "the key is kept")

	h := CheckpointHeader{Tenant: "default", Session: "nb", Label: "one"}
	path := filepath.Join(dir, "one.ckpt")
	payload := []byte("\x80\x05pickle-bytes\n\x00more")
	require.NoError(t, WriteCheckpoint(path, key, h, payload))
	st, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	got, err := ReadCheckpoint(path, key, h)
	require.NoError(t, err)
	assert.Equal(t, payload, got)

	good, err := os.ReadFile(path)
	require.NoError(t, err)
	refused := func(t *testing.T, b []byte, key []byte, want CheckpointHeader) {
		t.Helper()
		require.NoError(t, os.WriteFile(path, b, 0o600))
		got, err := ReadCheckpoint(path, key, want)
		assert.True(t, errors.Is(err, ErrCheckpointRefused), "%v", err)
		assert.Nil(t, got, "nothing of a refused checkpoint is returned")
	}
	t.Run("tampered payload", func(t *testing.T) {
		b := append([]byte(nil), good...)
		b[len(b)-1] ^= 1
		refused(t, b, key, h)
	})
	t.Run("truncated", func(t *testing.T) { refused(t, good[:len(good)-3], key, h) })
	t.Run("truncated in the header", func(t *testing.T) { refused(t, good[:20], key, h) })
	t.Run("extended", func(t *testing.T) { refused(t, append(append([]byte(nil), good...), 'x'), key, h) })
	t.Run("other key", func(t *testing.T) { refused(t, good, []byte("another key of thirty-two bytes!"), h) })
	t.Run("other label", func(t *testing.T) {
		refused(t, good, key, CheckpointHeader{Tenant: "default", Session: "nb", Label: "two"})
	})
	t.Run("empty", func(t *testing.T) { refused(t, nil, key, h) })
	t.Run("missing", func(t *testing.T) {
		_, err := ReadCheckpoint(filepath.Join(dir, "nope.ckpt"), key, h)
		assert.True(t, errors.Is(err, ErrCheckpointNotFound), "%v", err)
	})
}
