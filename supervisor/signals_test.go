package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const sigIgnChildEnv = "SUPERVISOR_SIGIGN_CHILD"

// TestStart_IgnoredSignalsNotInherited runs this test binary as a daemon
// started with SIGHUP and SIGINT ignored (as nohup and a shell's
// background jobs do): the service it starts must have neither ignored,
// or it could never be reloaded with `solo signal NAME HUP`.
func TestStart_IgnoredSignalsNotInherited(t *testing.T) {
	out := filepath.Join(t.TempDir(), "child")
	cmd := exec.Command("sh", "-c", `trap '' HUP INT && exec "$0"`, os.Args[0])
	cmd.Env = append(os.Environ(), sigIgnChildEnv+"="+out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 2, "%s", b)
	const hup, intr = 1 << (1 - 1), 1 << (2 - 1)
	daemon, service := sigIgnMask(t, lines[0]), sigIgnMask(t, lines[1])
	require.Equal(t, uint64(hup|intr), daemon&(hup|intr), "the daemon was started ignoring SIGHUP and SIGINT: %s", lines[0])
	require.Zero(t, service&(hup|intr), "the service inherited the daemon's ignored signals: %s", lines[1])
}

// sigIgnMask parses "SigIgn:\t<hex>" of /proc/PID/status.
func sigIgnMask(t *testing.T, line string) uint64 {
	t.Helper()
	hex, ok := strings.CutPrefix(line, "SigIgn:")
	require.True(t, ok, "not a SigIgn line: %q", line)
	m, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
	require.NoError(t, err)
	return m
}

// sigIgnChild is the daemon of TestStart_IgnoredSignalsNotInherited: it
// prints its own SigIgn, then that of a service it starts.
func sigIgnChild() {
	out := os.Getenv(sigIgnChildEnv)
	fail := func(err error) {
		fmt.Println(err)
		os.Exit(1)
	}
	printSigIgn := func(status string) {
		for _, l := range strings.Split(status, "\n") {
			if strings.HasPrefix(l, "SigIgn:") {
				fmt.Println(l)
				return
			}
		}
		fail(fmt.Errorf("no SigIgn in %q", status))
	}
	own, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fail(err)
	}
	printSigIgn(string(own))
	f, err := os.Create(out)
	if err != nil {
		fail(err)
	}
	p, err := Start(StartOptions{Argv: []string{"cat", "/proc/self/status"}, Output: f})
	f.Close()
	if err != nil {
		fail(err)
	}
	if _, err := p.Wait(context.Background()); err != nil {
		fail(err)
	}
	if _, err := p.Finish(); err != nil {
		fail(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		fail(err)
	}
	printSigIgn(string(b))
	os.Exit(0)
}
