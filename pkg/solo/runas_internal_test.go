package solo

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/state"
)

func TestPickDynamicUID(t *testing.T) {
	none := func(uint32) bool { return false }
	a, err := pickDynamicUID("alpha", nil, none)
	require.NoError(t, err)
	require.GreaterOrEqual(t, a, uint32(state.DynamicUIDMin))
	require.LessOrEqual(t, a, uint32(state.DynamicUIDMax))
	again, _ := pickDynamicUID("alpha", nil, none)
	require.Equal(t, a, again, "the same name, the same number")
	b, _ := pickDynamicUID("beta", nil, none)
	require.NotEqual(t, a, b)

	// Taken by another tenant, or a user or group of the host: the next
	// free one, wrapping around at the top.
	next, _ := pickDynamicUID("alpha", map[uint32]bool{a: true}, none)
	require.Equal(t, state.DynamicUIDMin+(a-state.DynamicUIDMin+1)%(state.DynamicUIDMax-state.DynamicUIDMin+1), next)
	skip, _ := pickDynamicUID("alpha", nil, func(id uint32) bool { return id == a })
	require.Equal(t, next, skip)
	top, _ := pickDynamicUID("alpha", nil, func(id uint32) bool { return id >= a })
	require.Equal(t, uint32(state.DynamicUIDMin), top, "wraps to the bottom of the range")

	_, err = pickDynamicUID("alpha", nil, func(uint32) bool { return true })
	require.True(t, errors.Is(err, errNoDynamicUID), "%v", err)
}

func TestIsConfined(t *testing.T) {
	for _, tc := range []struct {
		tenant, actor string
		want          bool
	}{
		{state.DefaultTenant, "", false},
		{state.DefaultTenant, "local", false},
		{state.DefaultTenant, "tok_1", true},
		{"alpha", "local", true},
		{"alpha", "tok_1", true},
	} {
		require.Equal(t, tc.want, isConfined(tc.tenant, tc.actor), "%+v", tc)
	}
}
