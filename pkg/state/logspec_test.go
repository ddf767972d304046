package state

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseByteSize(t *testing.T) {
	good := map[string]ByteSize{
		"10MiB": 10 << 20, "10M": 10_000_000, "10mb": 10_000_000, "1048576": 1 << 20,
		"512k": 512_000, "4KiB": 4096, "1GiB": 1 << 30, "1.5M": 1_500_000, " 2 MiB ": 2 << 20, "7B": 7,
	}
	for in, want := range good {
		got, err := ParseByteSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "MiB", "10XB", "-5", "1e3", "10 MiB extra", "99999999999999999999G"} {
		_, err := ParseByteSize(in)
		assert.Error(t, err, in)
	}

	var s Spec
	require.NoError(t, json.Unmarshal([]byte(`{"log":{"max_size":"64KiB","files":2}}`), &s))
	assert.Equal(t, ByteSize(64<<10), s.Log.MaxSize)
	require.NoError(t, json.Unmarshal([]byte(`{"log":{"max_size":65536}}`), &s))
	assert.Equal(t, ByteSize(64<<10), s.Log.MaxSize)
	err := json.Unmarshal([]byte(`{"log":{"max_size":"lots"}}`), &s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "max_size")
	assert.Equal(t, "10MiB", DefaultLogMaxSize.String())
}

func TestSpec_Log(t *testing.T) {
	base := func(l *LogSpec) Spec { return Spec{Name: "web", Command: []string{"x"}, Log: l} }

	t.Run("the defaults spelled out equal none", func(t *testing.T) {
		assert.True(t, base(nil).Equal(base(&LogSpec{MaxSize: DefaultLogMaxSize, Files: DefaultLogFiles})))
		assert.True(t, base(nil).Equal(base(&LogSpec{})))
		assert.False(t, base(nil).Equal(base(&LogSpec{Timestamps: true})))
		s := base(&LogSpec{Timestamps: true})
		s.Normalize()
		assert.Equal(t, &LogSpec{MaxSize: DefaultLogMaxSize, Files: DefaultLogFiles, Timestamps: true}, s.Log)
		c := s.Clone()
		c.Log.Files = 9
		assert.Equal(t, DefaultLogFiles, s.Log.Files, "Clone shares the log spec")
	})

	bad := []struct {
		spec  Spec
		field string
	}{
		{base(&LogSpec{MaxSize: 100}), "log.max_size"},
		{base(&LogSpec{MaxSize: 2 << 30}), "log.max_size"},
		{base(&LogSpec{Files: -1}), "log.files"},
		{base(&LogSpec{Files: MaxLogFiles + 1}), "log.files"},
		{Spec{Name: "k", Kind: "clock", Log: &LogSpec{Timestamps: true}}, "log.timestamps"},
	}
	for _, c := range bad {
		var fe *FieldError
		err := c.spec.Validate()
		require.True(t, errors.As(err, &fe), "%+v: %v", c.spec.Log, err)
		assert.Equal(t, c.field, fe.Field)
	}
	assert.NoError(t, base(&LogSpec{MaxSize: MinLogMaxSize, Files: MaxLogFiles, Timestamps: true}).Validate())
}
