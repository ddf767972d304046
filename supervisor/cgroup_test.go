package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solo-rt/solo/cgroup"
)

// mustCgroup makes a cgroup for one test's service, in an installation of
// its own, pruned at cleanup. The development machines run the tests as
// root with cgroup v1 controllers; where cgroups cannot be made the test
// fails rather than hide it.
func mustCgroup(t testing.TB, l cgroup.Limits) *cgroup.Group {
	t.Helper()
	m := cgroup.Open(t.TempDir())
	if !m.Available() {
		t.Fatalf("no cgroups: %v", m.Reason())
	}
	g, err := m.Create("t", "svc", l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Prune) // after the process's own cleanup (LIFO)
	return g
}

// escapeScript starts n children that each leave the process group with
// setsid and report their pid, then says "ready" and stays.
func escapeScript(n int, then string) string {
	return fmt.Sprintf(`i=0; while [ $i -lt %d ]; do setsid sh -c 'echo escaped $$; exec sleep 3001' & i=$((i+1)); done; `+
		`while [ "$(grep -c escaped "$OUT")" -lt %d ]; do sleep 0.01; done; echo ready; %s`, n, n, then)
}

// escapedPIDs reads the pids the escapees reported.
func escapedPIDs(t testing.TB, out string) []int {
	t.Helper()
	b, _ := os.ReadFile(out)
	var pids []int
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "escaped ") {
			pids = append(pids, fieldAfter(t, line, "escaped"))
		}
	}
	return pids
}

func startEscapes(t testing.TB, g *cgroup.Group, n int, then string) (*Process, []int) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, _ := mustStart(t, StartOptions{
		Argv: []string{"sh", "-c", escapeScript(n, then)}, Env: []string{"OUT=" + out, "PATH=" + os.Getenv("PATH")},
		Output: f, Cgroup: g,
	})
	waitForOutput(t, out, "ready")
	pids := escapedPIDs(t, out)
	if len(pids) != n {
		t.Fatalf("%d escapees reported, want %d", len(pids), n)
	}
	return p, pids
}

// TestStop_Cgroup: a child that left the service's process group with
// setsid dies with the service, whether the service is stopped or ends
// on its own, because it is still in the service's cgroup.
func TestStop_Cgroup(t *testing.T) {
	t.Run("stop", func(t *testing.T) {
		g := mustCgroup(t, cgroup.Limits{})
		p, escaped := startEscapes(t, g, 2, "exec sleep 3002")
		if _, err := Stop(context.Background(), p, syscall.SIGTERM, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		for _, pid := range escaped {
			assertDead(t, pid)
		}
		if pids, err := g.PIDs(); err != nil || len(pids) != 0 {
			t.Fatalf("cgroup after Stop: %v, %v; want empty", pids, err)
		}
	})
	t.Run("the leader exits on its own", func(t *testing.T) {
		g := mustCgroup(t, cgroup.Limits{})
		p, escaped := startEscapes(t, g, 1, "exit 3")
		if _, err := p.Wait(waitCtx(t)); err != nil {
			t.Fatal(err)
		}
		exit, err := p.Finish()
		if err != nil || exit.Code != 3 || exit.OOM {
			t.Fatalf("Finish = %+v, %v; want exit status 3, no OOM", exit, err)
		}
		assertDead(t, escaped[0])
	})
	t.Run("adopted", func(t *testing.T) {
		g := mustCgroup(t, cgroup.Limits{})
		child, escaped := startEscapes(t, g, 1, "exec sleep 3002")
		p, err := Adopt(child.Identity())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.Contain(g); err != nil {
			t.Fatal(err)
		}
		if _, err := Stop(context.Background(), p, syscall.SIGTERM, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		assertDead(t, escaped[0])
	})
}

// TestStart_Limits: the cgroup's limits hold for the service.
func TestStart_Limits(t *testing.T) {
	t.Run("memory_max: OOM killed and told", func(t *testing.T) {
		g := mustCgroup(t, cgroup.Limits{MemoryMax: 64 << 20})
		p, _ := mustStart(t, StartOptions{Argv: []string{"python3", "-c", "b = bytearray(200 << 20)"}, Cgroup: g})
		if _, err := p.Wait(waitCtx(t)); err != nil {
			t.Fatal(err)
		}
		exit, err := p.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if !exit.OOM || exit.Signal != syscall.SIGKILL {
			t.Fatalf("exit = %+v; want killed by the OOM killer", exit)
		}
	})
	t.Run("pids_max: a fork bomb stops at the limit", func(t *testing.T) {
		const limit = 8
		g := mustCgroup(t, cgroup.Limits{PIDsMax: limit})
		// A bounded bomb: 50 sleeps, each started only if the fork works;
		// it says how many it got.
		bomb := `
import os, subprocess, sys
n = 0
for i in range(50):
    try:
        subprocess.Popen(["sleep", "3001"])
        n += 1
    except OSError:
        pass
print("started", n, flush=True)
os.execvp("sleep", ["sleep", "3002"])
`
		p, out := mustStart(t, StartOptions{Argv: []string{"python3", "-c", bomb}, Cgroup: g})
		got := fieldAfter(t, waitForOutput(t, out, "started "), "started")
		pids, err := g.PIDs()
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) > limit || got >= 50 {
			t.Fatalf("%d processes in the cgroup, %d sleeps started; want at most %d processes", len(pids), got, limit)
		}
		mustKill(t, p)
	})
	t.Run("cpu: a busy loop gets its share", func(t *testing.T) {
		g := mustCgroup(t, cgroup.Limits{CPU: 0.2})
		mustStart(t, StartOptions{Argv: []string{"sh", "-c", "while :; do :; done"}, Cgroup: g})
		// Measured by the kernel: CPU used over the scheduling periods the
		// loop was runnable, 20 periods (2 s) of them.
		first := waitPeriods(t, g, 1)
		last := waitPeriods(t, g, first.Periods+20)
		share := float64(last.Usage-first.Usage) / float64(time.Duration(last.Periods-first.Periods)*cgroup.CPUPeriod)
		if share > 0.4 || share < 0.05 {
			t.Fatalf("the loop used %.2f of a core over %d periods; want about 0.2", share, last.Periods-first.Periods)
		}
	})
}

// waitPeriods waits until the group has run n CPU periods, by reading its
// counters.
func waitPeriods(t testing.TB, g *cgroup.Group, n uint64) cgroup.CPUStat {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := g.CPU()
		if err != nil {
			t.Fatal(err)
		}
		if st.Periods >= n {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group ran %d periods, want %d", st.Periods, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkStop_CgroupEscaped: stop a service whose 100 children escaped
// its process group with setsid; all must be gone when Stop returns.
func BenchmarkStop_CgroupEscaped(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		g := mustCgroup(b, cgroup.Limits{})
		p, escaped := startEscapes(b, g, 100, "exec sleep 3002")
		b.StartTimer()
		res, err := Stop(context.Background(), p, syscall.SIGTERM, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if res.Took > 10*time.Second {
			b.Fatalf("stop took %v, over its timeout", res.Took)
		}
		for _, pid := range escaped {
			assertDead(b, pid)
		}
		b.StartTimer()
	}
}

// TestStart_CgroupAndUmask: a start with both an umask and a cgroup
// forks on one thread that has both, so the child has its umask and is in
// its cgroup.
func TestStart_CgroupAndUmask(t *testing.T) {
	g := mustCgroup(t, cgroup.Limits{})
	umask := uint32(0o027)
	p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}, Cgroup: g, Umask: &umask})
	pids, err := g.PIDs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, p.PID()) {
		t.Fatalf("cgroup holds %v, not the child %d", pids, p.PID())
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(st), "Umask:\t0027") {
		t.Fatalf("child's status has no umask 0027:\n%s", st)
	}
}
