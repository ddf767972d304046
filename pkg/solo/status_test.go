package solo_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

func TestRuntime_StatusExplains(t *testing.T) {
	ctx := context.Background()
	// A backoff of an hour: the service stays in backoff for the test.
	rt := MustOpen(t, solo.Options{Backoff: supervisor.Backoff{Base: time.Hour, Max: time.Hour, Jitter: 0.1}})
	ev := follow(t, rt, 0)
	key := state.Key{Tenant: "default", Name: "crash"}
	_, err := rt.Deploy(ctx, solo.Spec{Name: "crash", Command: []string{"sh", "-c", "exit 4"}, Env: map[string]string{"API_TOKEN": "s3cret-value"}})
	require.NoError(t, err)
	env, p := ev.next(key, state.TypeServiceExited)
	exit := p.(state.Exited)

	st, err := rt.Status("default", "crash")
	require.NoError(t, err)
	assert.Equal(t, state.StateBackoff, st.State)
	assert.Equal(t, "exited with code 4", st.Reason)
	assert.Equal(t, 1, st.Restart)
	assert.Equal(t, state.DefaultMaxRestarts, st.RestartLimit)
	assert.Equal(t, env.Time.Add(exit.Backoff.Std()), st.NextAttemptAt, "the next attempt is the one the loop scheduled")
	assert.InDelta(t, float64(time.Hour), float64(st.NextAttemptAt.Sub(env.Time)), float64(7*time.Minute))
	require.Len(t, st.Exits, 1)
	assert.Equal(t, 4, st.Exits[0].ExitCode)
	assert.Equal(t, []string{"API_TOKEN"}, st.Spec.EnvKeys)
	b, err := json.Marshal(st)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "s3cret-value")

	lines, err := rt.Why("default", "crash", 0)
	require.NoError(t, err)
	require.NotEmpty(t, lines)
	last := lines[len(lines)-1].Text
	assert.True(t, strings.HasPrefix(last, "exited with code 4 at "), last)
	assert.Contains(t, last, "restart 1 of 5 within 1m0s follows in")
	assert.Contains(t, last, "next attempt in")

	_, err = rt.Why("default", "ghost", 0)
	assert.ErrorIs(t, err, solo.ErrNotFound)
	lines, err = rt.Why("default", "crash", 1)
	require.NoError(t, err)
	assert.Len(t, lines, 1)
}
