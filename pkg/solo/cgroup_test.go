package solo_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/cgroup"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// lockedBuffer is a log output safe for the daemon's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRuntime_NoCgroups: where no cgroup can be made, the runtime says so
// once, runs services by process group, and refuses limits, naming the
// field and writing nothing.
func TestRuntime_NoCgroups(t *testing.T) {
	ctx := context.Background()
	var logs lockedBuffer
	rt := MustOpen(t, solo.Options{
		Cgroups: cgroup.Disabled("cgroups turned off for this test"),
		Logger:  hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}),
	})
	assert.Equal(t, 1, strings.Count(logs.String(), "cgroups turned off for this test"), "want one warning at start:\n%s", logs.String())

	_, err := rt.Deploy(ctx, sleeper("plain"))
	require.NoError(t, err, "a service without limits runs without cgroups")

	head := rt.Store().Head()
	for _, c := range []struct {
		field string
		spec  solo.Spec
	}{
		{"memory_max", solo.Spec{Name: "m", Command: []string{"true"}, MemoryMax: 64 << 20}},
		{"cpu", solo.Spec{Name: "c", Command: []string{"true"}, CPU: 0.5}},
		{"pids_max", solo.Spec{Name: "p", Command: []string{"true"}, PIDsMax: 10}},
	} {
		_, err := rt.Deploy(ctx, c.spec)
		var fe *state.FieldError
		require.True(t, errors.As(err, &fe), "deploy with %s: %v", c.field, err)
		assert.Equal(t, c.field, fe.Field)
		assert.Contains(t, err.Error(), "cgroups")
		_, err = rt.Apply(ctx, solo.ApplyRequest{Services: []solo.Spec{sleeper("a"), c.spec}})
		require.ErrorIs(t, err, state.ErrInvalidSpec)
		assert.Contains(t, err.Error(), "services[1]."+c.field)
	}
	assert.Equal(t, head, rt.Store().Head(), "a refused spec wrote to the log")
}

// assertNoCgroups fails if the installation at dir left a cgroup behind.
func assertNoCgroups(tb testing.TB, dir string) {
	tb.Helper()
	root := cgroup.RootName(dir)
	for _, top := range []string{filepath.Join(cgroup.Mountpoint, "memory"), cgroup.Mountpoint} {
		if _, err := os.Stat(filepath.Join(top, root)); err == nil {
			tb.Errorf("the runtime left its cgroup %s in %s", root, top)
		}
	}
}

// pruneCgroups removes, when the test ends, the empty cgroups a runtime
// opened on dir without [MustOpen] leaves (a drain keeps them for the
// services' next start), and fails if one still holds a process.
func pruneCgroups(tb testing.TB, dir string) {
	tb.Cleanup(func() {
		cgroup.Open(dir).Prune()
		assertNoCgroups(tb, dir)
	})
}
