package solo

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFileRoom: a start that leaves fewer than fileReserve open files
// beside its running services says so, naming the limit and what to raise.
func TestFileRoom(t *testing.T) {
	assert.NoError(t, fileRoom(20000, 20000, 10_000))
	assert.NoError(t, fileRoom(0, 0, 10_000), "an unknown limit says nothing")
	assert.NoError(t, fileRoom(1024+100, 4096, 100))
	err := fileRoom(4095, 4096, 10_000)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "10000 services run")
	assert.Contains(t, err.Error(), "limit of open files is 4095 (hard limit 4096)")
	assert.Contains(t, err.Error(), "LimitNOFILE=")
}
