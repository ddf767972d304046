package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/internal/witness"
	"github.com/solo-rt/solo/pkg/exitcode"
)

// startWitness runs `solo _witness` as its own process and returns its
// addresses and a client of it; it is SIGKILLed when t ends.
func startWitness(t testing.TB) (witness.Addrs, *witness.Client) {
	t.Helper()
	cmd := exec.Command(soloBin, "_witness")
	cmd.Env = cleanEnv()
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadBytes('\n')
	require.NoError(t, err, "solo _witness printed no addresses")
	var a witness.Addrs
	require.NoError(t, json.Unmarshal(line, &a))
	return a, witness.NewClient(a.HTTP)
}

// startReporter runs `solo _report` outside any daemon, SIGKILLed when t
// ends.
func startReporter(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(soloBin, append([]string{"_report"}, args...)...)
	cmd.Env = cleanEnv()
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestWitness_RealProcesses(t *testing.T) {
	addrs, w := startWitness(t)
	dir := dataDir(t)
	startDaemon(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A service deployed by Solo names itself from its marker.
	mustCLI(t, dir, "deploy", "web", "--env", "SOLO_NODE=n1", "--env", "SOLO_FENCE=7", "--",
		soloBin, "_report", "--witness", addrs.Report)
	st, err := w.Wait(ctx, func(st witness.State) bool { return len(st.Services["default/web"].Live) == 1 })
	require.NoError(t, err)
	first := st.Services["default/web"].Live[0]
	assert.Equal(t, "n1", first.Node)
	assert.Equal(t, int64(7), first.Fence)
	assert.Contains(t, mustCLI(t, dir, "status", "web"), strconv.Itoa(first.PID))

	// A restart stops the old instance before the new one starts: never two.
	mustCLI(t, dir, "restart", "web")
	st, err = w.Wait(ctx, func(st witness.State) bool {
		live := st.Services["default/web"].Live
		return len(live) == 1 && live[0].PID != first.PID
	})
	require.NoError(t, err)
	web := st.Services["default/web"]
	assert.Equal(t, 1, web.MaxLive)
	assert.Empty(t, st.Violations())

	// A second instance beside it, with an older fence: the witness sees
	// both at once, and the fence go back.
	stray := startReporter(t, "--witness", addrs.Report, "--service", "default/web", "--node", "n2")
	st, err = w.Wait(ctx, func(st witness.State) bool { return st.Services["default/web"].MaxLive == 2 })
	require.NoError(t, err)
	require.NotEmpty(t, st.Services["default/web"].Overlaps)
	assert.Equal(t, stray.Process.Pid, st.Services["default/web"].Overlaps[0].Later.PID)

	// SIGKILLed and declared dead: one live instance again.
	require.NoError(t, stray.Process.Signal(syscall.SIGKILL))
	stray.Wait()
	n, err := w.MarkDead(ctx, witness.Dead{PID: stray.Process.Pid})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	st, err = w.State(ctx)
	require.NoError(t, err)
	web = st.Services["default/web"]
	require.Len(t, web.Live, 1)
	assert.NotEqual(t, stray.Process.Pid, web.Live[0].PID)
	assert.Zero(t, web.AfterDeath)
	assert.Equal(t, 2, web.MaxLive, "the past is not forgotten")
	assert.NoError(t, st.RunningOnce("default/web"))
	assert.Equal(t, []witness.FenceRegression{{Lower: 0, Higher: 7, LowerLast: web.Instances[2].Last, HigherFirst: web.Instances[0].First}},
		web.FenceRegressions)
}

func TestWitness_BadInput(t *testing.T) {
	dir := dataDir(t)
	for _, tc := range []struct {
		args []string
		env  string
		says string
	}{
		{[]string{"_report", "--service", "default/web"}, "", "--witness (env SOLO_WITNESS) is required"},
		{[]string{"_report", "--witness", "127.0.0.1:1"}, "", "--service is required outside a Solo service"},
		{[]string{"_report", "--witness", "127.0.0.1:1", "--service", "s"}, "SOLO_FENCE=abc", `SOLO_FENCE must be a non-negative integer, got "abc"`},
		{[]string{"_report", "--witness", "127.0.0.1:1", "--service", "s", "--interval", "0s"}, "", "--interval must be positive"},
		{[]string{"_witness", "--window", "0s"}, "", "--window must be positive"},
		{[]string{"_witness", "extra"}, "", "takes no arguments"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := exec.Command(soloBin, append([]string{"--data-dir", dir}, tc.args...)...)
			cmd.Env = cleanEnv()
			if tc.env != "" {
				cmd.Env = append(cmd.Env, tc.env)
			}
			out, _ := cmd.CombinedOutput()
			assert.Equal(t, exitcode.Usage, cmd.ProcessState.ExitCode(), "%s", out)
			assert.Contains(t, string(out), tc.says)
		})
	}
}
