package cgroup

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
)

// mustManager opens a Manager for a fresh data dir and prunes its cgroups
// when the test ends. It fails the test where cgroups cannot be made: the
// development and CI machines run as root with cgroup v1 controllers.
func mustManager(t *testing.T) *Manager {
	t.Helper()
	m := Open(t.TempDir())
	if !m.Available() {
		t.Fatalf("no cgroups: %v", m.Reason())
	}
	t.Cleanup(func() {
		m.Prune()
		for _, top := range []string{filepath.Join(Mountpoint, "memory"), Mountpoint} {
			if _, err := os.Stat(filepath.Join(top, m.Root())); err == nil {
				t.Errorf("cgroup %s left behind in %s", m.Root(), top)
			}
		}
	})
	return m
}

// startIn starts argv in g and returns the command, reaped at cleanup.
func startIn(t *testing.T, g *Group, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.Start(cmd.SysProcAttr, cmd.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func TestRootName(t *testing.T) {
	a, b := RootName("/var/lib/solo"), RootName("/var/lib/solo2")
	if a == b {
		t.Fatalf("two data dirs share the root %s", a)
	}
	if a != RootName("/var/lib/solo/") || len(a) != len("solo-")+16 {
		t.Fatalf("RootName = %q: not stable or not solo-<16 hex>", a)
	}
}

// TestGroup_KillEscaped: a child that left its process group with setsid is
// still in the service's cgroup, and Kill ends it.
func TestGroup_KillEscaped(t *testing.T) {
	m := mustManager(t)
	g, err := m.Create("t1", "esc", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := startIn(t, g, "sh", "-c", `setsid sh -c 'echo $$ > `+dir+`/esc; exec sleep 3001' & exec sleep 3002`)
	escaped := waitPIDFile(t, filepath.Join(dir, "esc"))
	pids, err := g.PIDs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, cmd.Process.Pid) || !slices.Contains(pids, escaped) {
		t.Fatalf("cgroup holds %v; want the leader %d and the escaped %d", pids, cmd.Process.Pid, escaped)
	}
	if _, err := m.Create("t1", "empty", Limits{}); err != nil {
		t.Fatal(err)
	}
	members, err := m.Members()
	if err != nil {
		t.Fatal(err)
	}
	if got := members[Ref{Tenant: "t1", Name: "esc"}]; len(members) != 1 || len(got) != 2 || !slices.Contains(got, escaped) {
		t.Fatalf("Members() = %v; want only t1/esc, with the leader and the escaped %d", members, escaped)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The leader is our child and stays unreaped (a zombie) while Kill
	// runs, as under the supervisor, which reaps only after the sweep.
	if err := g.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(escaped, 0); err == nil {
		if st, _ := os.ReadFile("/proc/" + itoa(escaped) + "/stat"); len(st) > 0 && !isZombie(st) {
			t.Fatalf("escaped process %d still runs", escaped)
		}
	}
	if err := m.Remove(ctx, "t1", "esc"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Load("t1", "esc"); !os.IsNotExist(err) && err == nil {
		t.Fatal("the removed cgroup still loads")
	}
}

// TestGroup_KillNested: a process that moved itself into a cgroup it made
// below the service's is still the service's: PIDs lists it, Kill ends it
// and Remove takes both cgroups away.
func TestGroup_KillNested(t *testing.T) {
	m := mustManager(t)
	g, err := m.Create("t1", "nest", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(Mountpoint, "freezer", g.Path(), "sub")
	dir := t.TempDir()
	cmd := startIn(t, g, "sh", "-c", `sh -c 'mkdir `+sub+` && echo $$ > `+sub+`/cgroup.procs && echo $$ > `+dir+`/nested && exec sleep 3001' & exec sleep 3002`)
	nested := waitPIDFile(t, filepath.Join(dir, "nested"))
	pids, err := g.PIDs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, cmd.Process.Pid) || !slices.Contains(pids, nested) {
		t.Fatalf("cgroup holds %v; want the leader %d and the nested %d", pids, cmd.Process.Pid, nested)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.ReadFile("/proc/" + itoa(nested) + "/stat"); len(st) > 0 && !isZombie(st) {
		t.Fatalf("nested process %d still runs", nested)
	}
	if err := m.Remove(ctx, "t1", "nest"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sub); !os.IsNotExist(err) {
		t.Fatalf("the nested cgroup %s is left: %v", sub, err)
	}
}

// TestGroup_StartGoesBack: a child started in a group (made, or found
// again by Load, with limits or not) is in the group's cgroup in every
// controller the group joins from its first instruction, and no thread of
// the starting process stays there: each is back in the cgroups it came
// from.
func TestGroup_StartGoesBack(t *testing.T) {
	m := mustManager(t)
	if m.Version() != V1 {
		t.Skipf("moves threads only with cgroup v1; this host has %v", m.Version())
	}
	made, err := m.Create("t1", "made", Limits{PIDsMax: 50, MemoryMax: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create("t1", "loaded", Limits{}); err != nil {
		t.Fatal(err)
	}
	loaded, err := m.Load("t1", "loaded")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Group{made, loaded} {
		// The child reads its own cgroups first thing: what it was born in.
		out := filepath.Join(t.TempDir(), "cgroup")
		cmd := startIn(t, g, "sh", "-c", "cat /proc/self/cgroup > "+out+".tmp && mv "+out+".tmp "+out+" && exec sleep 3003")
		b := waitFile(t, out)
		for _, ctl := range []string{"freezer", "memory", "pids"} {
			if ctl != "freezer" && g == loaded {
				continue // no limits: the freezer alone is joined
			}
			if got := cgroupOf(string(b), ctl); got != g.Path() {
				t.Errorf("%s: child born in %s cgroup %q; want %q", g.Path(), ctl, got, g.Path())
			}
		}
		pids, err := g.PIDs()
		if err != nil {
			t.Fatal(err)
		}
		// The child's own children (its cat and mv) may still be listed.
		if !slices.Contains(pids, cmd.Process.Pid) || slices.Contains(pids, os.Getpid()) {
			t.Errorf("%s holds %v; want the child %d, never the starting process %d", g.Path(), pids, cmd.Process.Pid, os.Getpid())
		}
	}
	for tid, cg := range threadCgroups(t) {
		if strings.Contains(cg, m.Root()) {
			t.Errorf("thread %s of the starting process stayed in a service's cgroup:\n%s", tid, cg)
		}
	}
}

// waitFile waits for path to exist (written whole, then renamed into
// place) and returns its contents.
func waitFile(t *testing.T, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			return b
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %s", path)
	return nil
}

// threadCgroups maps each thread of this process to its /proc cgroup file.
func threadCgroups(t *testing.T) map[string]string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range tasks {
		if b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/cgroup"); err == nil {
			m[e.Name()] = string(b)
		}
	}
	return m
}

// cgroupOf returns the path of controller ctl in a /proc cgroup file.
func cgroupOf(procCgroup, ctl string) string {
	for line := range strings.Lines(procCgroup) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) == 3 && slices.Contains(strings.Split(f[1], ","), ctl) {
			return f[2]
		}
	}
	return ""
}

// TestManager_LoadMade: the cgroup a start made is found as Create made
// it (its limits, its processes, its end), without making it again; a
// service that has none is not one.
func TestManager_LoadMade(t *testing.T) {
	m := mustManager(t)
	l := Limits{MemoryMax: 64 << 20}
	made, err := m.Create("t1", "web", l)
	if err != nil {
		t.Fatal(err)
	}
	cmd := startIn(t, made, "sleep", "3004")
	found, err := m.LoadMade("t1", "web", l)
	if err != nil {
		t.Fatal(err)
	}
	if found.Path() != made.Path() || found.Limits() != l {
		t.Errorf("found %s with %+v; want %s with %+v", found.Path(), found.Limits(), made.Path(), l)
	}
	pids, err := found.PIDs()
	if err != nil || !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("found group holds %v (%v); want the child %d", pids, err, cmd.Process.Pid)
	}
	if _, err := found.OOMKills(); err != nil {
		t.Errorf("OOM kills of the found group: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := found.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Error("the child outlived the kill of the found group")
	}
	if _, err := m.LoadMade("t1", "never", l); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadMade of a service without a cgroup: %v; want os.ErrNotExist", err)
	}
}

// TestGroup_ThawLeftover: a group a dead daemon left frozen is thawed when
// it is found again, and one that is not frozen is taken as it is.
func TestGroup_ThawLeftover(t *testing.T) {
	m := mustManager(t)
	if m.Version() != V1 {
		t.Skipf("the freezer is a v1 controller; this host has %v", m.Version())
	}
	g, err := m.Create("t1", "web", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	startIn(t, g, "sleep", "3005")
	if g.frozen() {
		t.Fatal("a group just made reads as frozen")
	}
	if err := g.v1.Freeze(); err != nil {
		t.Fatal(err)
	}
	if !g.frozen() {
		t.Fatal("a frozen group reads as thawed")
	}
	found, err := m.LoadMade("t1", "web", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if found.frozen() || g.v1.State() != cgroup1.Thawed {
		t.Errorf("found again, the group is %v; want thawed", g.v1.State())
	}
}
