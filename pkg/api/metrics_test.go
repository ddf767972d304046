package api_test

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/api/apitest"
	"github.com/solo-rt/solo/pkg/state"
)

// promtoolCheck fails the test unless `promtool check metrics` finds text
// clean. promtool comes with Debian's prometheus package (make test-deps
// installs it); without it the test fails, it never skips.
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool is needed to check the metrics: run make test-deps (Debian package prometheus)")
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "promtool check metrics:\n%s", out.String())
}

// series returns the lines of text that are samples of metric, by their
// labels part: `{name="web",tenant="default"}` -> value.
func series(text, metric string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.SplitSeq(text, "\n") {
		rest, ok := strings.CutPrefix(line, metric+"{")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, ' ')
		v, err := strconv.ParseFloat(rest[i+1:], 64)
		if err != nil {
			continue
		}
		out["{"+rest[:i]] = v
	}
	return out
}

func TestServer_ServiceMetrics(t *testing.T) {
	ctx := context.Background()
	f := apitest.MustServe(t, apitest.Options{})
	before := time.Now()
	_, err := f.Runtime.Deploy(ctx, sleeper("default", "web"))
	require.NoError(t, err)
	_, err = f.Runtime.Deploy(ctx, state.Spec{Tenant: "other", Name: "job", Command: []string{"sh", "-c", "exit 7"}, Restart: state.RestartNever})
	require.NoError(t, err)
	f.WaitEvent(t, 1, string(state.TypeServiceStarted), "default", "web")
	f.WaitEvent(t, 1, string(state.TypeServiceExited), "other", "job")

	text := scrape(t, f)
	promtoolCheck(t, text)
	web, job := `{name="web",tenant="default"}`, `{name="job",tenant="other"}`
	assert.Equal(t, map[string]float64{web: 1, job: 0}, series(text, "solo_service_up"))
	assert.Equal(t, map[string]float64{web: 1, job: 0}, series(text, "solo_service_ready"))
	assert.Equal(t, map[string]float64{web: 0, job: 0}, series(text, "solo_service_restarts"))
	assert.Equal(t, map[string]float64{job: 7}, series(text, "solo_service_last_exit_code"))
	start := series(text, "solo_service_start_time_seconds")
	require.Len(t, start, 1, "a start time for what does not run")
	assert.InDelta(t, float64(before.UnixNano())/1e9, start[web], 60)
	assert.GreaterOrEqual(t, start[web], float64(before.Unix()))
	states := series(text, "solo_service_state")
	assert.Len(t, states, 14, "one series per state per service")
	assert.Equal(t, 1.0, states[`{name="web",state="running",tenant="default"}`])
	assert.Equal(t, 0.0, states[`{name="web",state="killed",tenant="default"}`])
	assert.Equal(t, 1.0, states[`{name="job",state="exited",tenant="other"}`])

	// Killed: the series stay, saying so. Removed: they go.
	require.NoError(t, f.Runtime.Kill(ctx, "default", "web"))
	text = scrape(t, f)
	promtoolCheck(t, text)
	assert.Equal(t, 0.0, series(text, "solo_service_up")[web])
	assert.Equal(t, 1.0, series(text, "solo_service_state")[`{name="web",state="killed",tenant="default"}`])
	assert.Equal(t, -1.0, series(text, "solo_service_last_exit_code")[web], "ended by SIGTERM")
	assert.NotContains(t, series(text, "solo_service_start_time_seconds"), web)

	require.NoError(t, f.Runtime.Remove(ctx, "default", "web"))
	text = scrape(t, f)
	promtoolCheck(t, text)
	for _, m := range []string{"solo_service_up", "solo_service_state", "solo_service_restarts", "solo_service_last_exit_code", "solo_service_ready"} {
		for labels := range series(text, m) {
			assert.NotContains(t, labels, `name="web"`, "%s of a removed service", m)
		}
	}
	assert.Contains(t, series(text, "solo_service_up"), job)
}
