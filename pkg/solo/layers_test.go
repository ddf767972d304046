package solo

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// The domain (pkg/state) and the supervisor may not import each other, so
// the few values both must hold are spelt twice; the runtime, which sees
// both, keeps them equal.
func TestLayers_agree(t *testing.T) {
	assert.Equal(t, state.DefaultStopTimeout.Std(), supervisor.DefaultStopTimeout,
		"the supervisor's fallback stop timeout is the domain's default")
	assert.Equal(t, state.ReservedEnv, supervisor.MarkerEnv,
		"a spec may not set the variable the supervisor marks its children with")
	assert.Equal(t, int64(state.DefaultLogMaxSize), supervisor.DefaultMaxSize, "a spec's default log size is the supervisor's")
	assert.Equal(t, state.DefaultLogFiles, supervisor.DefaultMaxFiles, "a spec's default log files are the supervisor's")
}
