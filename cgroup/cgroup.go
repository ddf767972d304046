package cgroup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cgroups "github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/solo-rt/solo/internal/parallel"
)

// Limits are a service's resource limits; a zero field means no limit.
type Limits struct {
	// MemoryMax is the most memory, in bytes, the service's processes may
	// use together (swap included where it is accounted) before the
	// kernel's OOM killer ends one of them.
	MemoryMax int64
	// CPU is the share of CPU time, in cores: 0.5 is half of one core.
	CPU float64
	// PIDsMax is the most processes (and threads) the service may have.
	PIDsMax int64
}

// IsZero reports whether l sets no limit.
func (l Limits) IsZero() bool { return l == Limits{} }

// CPUPeriod is the scheduling period over which [Limits.CPU] is enforced.
const CPUPeriod = 100 * time.Millisecond

// Version is the cgroup version a [Manager] uses.
type Version int

const (
	None Version = iota // no cgroups: process groups only
	V1                  // cgroup v1 controllers (legacy or hybrid hierarchy)
	V2                  // the unified hierarchy
)

func (v Version) String() string {
	switch v {
	case V1:
		return "cgroup v1"
	case V2:
		return "cgroup v2"
	}
	return "none"
}

// Mountpoint is where the cgroup hierarchies are mounted.
const Mountpoint = "/sys/fs/cgroup"

// v1Controllers are the v1 controllers a service's cgroup may join.
var v1Controllers = []cgroup1.Name{cgroup1.Memory, cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Pids, cgroup1.Freezer}

// v1For are the v1 controllers a service with limits l joins: the freezer,
// which lists its processes and holds them still while they are killed,
// and only the controllers of the limits it sets (cpuacct with cpu, for
// its usage). Every controller joined costs each start an attach, which
// the kernel serialises with every fork on the host.
func v1For(l Limits) []cgroup1.Name {
	names := []cgroup1.Name{cgroup1.Freezer}
	if l.MemoryMax > 0 {
		names = append(names, cgroup1.Memory)
	}
	if l.CPU > 0 {
		names = append(names, cgroup1.Cpu, cgroup1.Cpuacct)
	}
	if l.PIDsMax > 0 {
		names = append(names, cgroup1.Pids)
	}
	return names
}

// v2Controllers are the controllers a v2 root must offer.
var v2Controllers = []string{"memory", "cpu", "pids"}

// RootName is the name of the installation's root cgroup for the data dir
// home: solo-<16 hex digits of the SHA-256 of its absolute path>.
func RootName(home string) string {
	if abs, err := filepath.Abs(home); err == nil {
		home = abs
	}
	sum := sha256.Sum256([]byte(home))
	return "solo-" + hex.EncodeToString(sum[:8])
}

// Manager makes and finds the cgroups of one installation.
type Manager struct {
	version Version
	root    string // "/solo-<hash>"
	reason  error  // why version is None
	// v1 only: the daemon's own cgroups, where a starting thread goes back.
	homePath cgroup1.Path
}

// Open prepares the installation's root cgroup for the data dir home. It
// never fails: where no cgroup can be made, the Manager it returns is not
// [Manager.Available] and [Manager.Reason] says why.
func Open(home string) *Manager {
	m := &Manager{root: "/" + RootName(home)}
	switch cgroups.Mode() {
	case cgroups.Unified:
		m.reason = m.openV2()
	case cgroups.Legacy, cgroups.Hybrid:
		m.reason = m.openV1()
	default:
		m.reason = errors.New("no cgroup hierarchy is mounted at " + Mountpoint)
	}
	return m
}

// Disabled returns a Manager that makes no cgroup, with reason as
// [Manager.Reason]: for tests and for a caller that turns containment off.
func Disabled(reason string) *Manager { return &Manager{reason: errors.New(reason)} }

func (m *Manager) openV1() error {
	c, err := cgroup1.New(cgroup1.StaticPath(m.root), &specs.LinuxResources{}, v1Hierarchy(v1Controllers))
	if err != nil {
		return fmt.Errorf("cannot create %s in the cgroup v1 hierarchies: %w", m.root, err)
	}
	have := map[cgroup1.Name]bool{}
	for _, s := range c.Subsystems() {
		have[s.Name()] = true
	}
	for _, n := range []cgroup1.Name{cgroup1.Freezer, cgroup1.Memory, cgroup1.Cpu, cgroup1.Pids} {
		if !have[n] {
			return fmt.Errorf("the cgroup v1 %s controller is not mounted", n)
		}
	}
	// Made to learn that it can be; made again with the first service's,
	// so that a runtime that starts no service leaves nothing.
	for _, n := range v1Controllers {
		_ = unix.Rmdir(filepath.Join(Mountpoint, string(n), m.root))
	}
	homePath := cgroup1.PidPath(os.Getpid())
	if _, err := cgroup1.Load(homePath, v1Hierarchy(v1Controllers)); err != nil {
		return fmt.Errorf("cgroup v1: the daemon's own cgroups: %w", err)
	}
	m.homePath = homePath
	m.version = V1
	return nil
}

func (m *Manager) openV2() error {
	avail, err := os.ReadFile(filepath.Join(Mountpoint, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("cgroup v2: %w", err)
	}
	for _, c := range v2Controllers {
		if !slices.Contains(strings.Fields(string(avail)), c) {
			return fmt.Errorf("cgroup v2: the %s controller is not delegated to %s", c, Mountpoint)
		}
	}
	root, err := cgroup2.NewManager(Mountpoint, m.root, &cgroup2.Resources{})
	if err != nil {
		return fmt.Errorf("cannot create %s in the cgroup v2 hierarchy: %w", m.root, err)
	}
	if err := root.ToggleControllers(v2Controllers, cgroup2.Enable); err != nil {
		return fmt.Errorf("cgroup v2: enable %v under %s: %w", v2Controllers, m.root, err)
	}
	m.version = V2
	return nil
}

// v1Mounted lists the mounted v1 subsystems once: the library's Default
// reads the mount table each time, which would cost every start.
var v1Mounted = sync.OnceValues(cgroup1.Default)

// v1Hierarchy keeps the v1 subsystems named from those mounted.
func v1Hierarchy(names []cgroup1.Name) cgroup1.InitOpts {
	return cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) {
		all, err := v1Mounted()
		if err != nil {
			return nil, err
		}
		var keep []cgroup1.Subsystem
		for _, s := range all {
			if slices.Contains(names, s.Name()) {
				keep = append(keep, s)
			}
		}
		return keep, nil
	})
}

// Available reports whether services get cgroups.
func (m *Manager) Available() bool { return m.version != None }

// Version is the cgroup version in use, or [None].
func (m *Manager) Version() Version { return m.version }

// Reason says why no cgroup can be made; nil when [Manager.Available].
func (m *Manager) Reason() error { return m.reason }

// Root is the installation's cgroup, relative to the top of a hierarchy.
func (m *Manager) Root() string { return m.root }

// Path is the cgroup of a service, relative to the top of a hierarchy:
// /solo-<hash>/<tenant>/<name>.
func (m *Manager) Path(tenant, name string) string {
	return m.root + "/" + tenant + "/" + name
}

// Create makes (or takes over, if it exists) the cgroup of a service and
// sets its limits. It fails with [ErrUnavailable] when the Manager is not
// [Manager.Available].
func (m *Manager) Create(tenant, name string, l Limits) (*Group, error) {
	path := m.Path(tenant, name)
	g := &Group{path: path, limits: l, m: m}
	switch m.version {
	case V1:
		c, err := cgroup1.New(cgroup1.StaticPath(path), v1Resources(l), v1Hierarchy(v1For(l)))
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", path, err)
		}
		g.v1 = c
		for _, sub := range c.Subsystems() {
			g.joined = append(g.joined, sub.Name())
		}
		if err := g.v1Tasks(); err != nil {
			return nil, err
		}
		if err := g.thawLeftover(); err != nil {
			return nil, err
		}
	case V2:
		c, err := cgroup2.NewManager(Mountpoint, path, v2Resources(l))
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", path, err)
		}
		g.v2 = c
	default:
		return nil, fmt.Errorf("cgroup %s: %w: %v", path, ErrUnavailable, m.reason)
	}
	return g, nil
}

// Load finds the existing cgroup of a service, without changing its
// limits. It fails with an error wrapping [os.ErrNotExist] if there is
// none.
func (m *Manager) Load(tenant, name string) (*Group, error) {
	return m.load(tenant, name, v1Controllers, Limits{})
}

// LoadMade finds the existing cgroup of a service that [Manager.Create]
// made with limits l, as Create would return it, without making it again:
// on v1 it looks only at the controllers l joins (see v1For), where Load
// looks at every one a service's cgroup may join. It fails as Load does.
func (m *Manager) LoadMade(tenant, name string, l Limits) (*Group, error) {
	return m.load(tenant, name, v1For(l), l)
}

func (m *Manager) load(tenant, name string, names []cgroup1.Name, l Limits) (*Group, error) {
	path := m.Path(tenant, name)
	g := &Group{path: path, limits: l, m: m}
	switch m.version {
	case V1:
		c, err := cgroup1.Load(cgroup1.StaticPath(path), v1Hierarchy(names))
		if errors.Is(err, cgroup1.ErrCgroupDeleted) {
			err = os.ErrNotExist
		}
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", path, err)
		}
		g.v1 = c
		for _, sub := range c.Subsystems() {
			g.joined = append(g.joined, sub.Name())
		}
		if err := g.v1Tasks(); err != nil {
			return nil, err
		}
		if err := g.thawLeftover(); err != nil {
			return nil, err
		}
	case V2:
		if _, err := os.Stat(filepath.Join(Mountpoint, path)); err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", path, err)
		}
		c, err := cgroup2.Load(path)
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", path, err)
		}
		g.v2 = c
	default:
		return nil, fmt.Errorf("cgroup %s: %w: %v", path, ErrUnavailable, m.reason)
	}
	return g, nil
}

// Remove kills what is left in a service's cgroup and removes it, and its
// tenant's cgroup if that is then empty. A cgroup that does not exist is
// not an error.
func (m *Manager) Remove(ctx context.Context, tenant, name string) error {
	if !m.Available() {
		return nil
	}
	g, err := m.Load(tenant, name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := g.Kill(ctx); err != nil {
		return err
	}
	if err := g.Delete(); err != nil {
		return err
	}
	m.removeIfEmpty(m.root + "/" + tenant)
	return nil
}

// removeIfEmpty removes a directory cgroup with no children, quietly: a
// tenant's cgroup that still holds a service stays.
func (m *Manager) removeIfEmpty(path string) {
	switch m.version {
	case V1:
		for _, n := range v1Controllers {
			_ = unix.Rmdir(filepath.Join(Mountpoint, string(n), path))
		}
	case V2:
		_ = unix.Rmdir(filepath.Join(Mountpoint, path))
	}
}

// Group is the cgroup of one service.
type Group struct {
	path   string
	limits Limits
	m      *Manager
	v1     cgroup1.Cgroup
	v2     *cgroup2.Manager
	// startMu is held from Enter to leave (v1): one start at a time
	// raises and restores pids.max, and no Kill runs while a thread of the
	// daemon is in the group.
	startMu sync.Mutex
	joined  []cgroup1.Name // v1: the controllers a start joins
	// v1: the tasks files a starting thread writes to join the group
	// (enter) and to go back to the daemon's own cgroups (back), one per
	// controller joined.
	enter, back []string
}

// v1Tasks finds the tasks files of g's controllers, in the group and in
// the daemon's own cgroups, once: every start writes them.
func (g *Group) v1Tasks() error {
	g.enter, g.back = nil, nil
	for _, sub := range g.v1.Subsystems() {
		if len(g.joined) > 0 && !slices.Contains(g.joined, sub.Name()) {
			continue
		}
		p, ok := sub.(interface{ Path(string) string })
		if !ok {
			continue
		}
		home, err := g.m.homePath(sub.Name())
		if err != nil {
			return fmt.Errorf("cgroup v1: the daemon's own %s cgroup: %w", sub.Name(), err)
		}
		g.enter = append(g.enter, filepath.Join(p.Path(g.path), "tasks"))
		g.back = append(g.back, filepath.Join(p.Path(home), "tasks"))
	}
	return nil
}

// moveSelf moves the calling thread into the cgroup of each tasks file, by
// writing "0" (the writer itself) rather than its thread id: for itself,
// the kernel moves one thread without write-locking the host-wide
// threadgroup lock that every fork and exit of the host takes for reading,
// so that a start neither waits for nor holds up the forks around it.
func moveSelf(files []string) error {
	for _, f := range files {
		fd, err := unix.Open(f, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		for err == unix.EINTR {
			fd, err = unix.Open(f, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			return &os.PathError{Op: "open", Path: f, Err: err}
		}
		_, err = unix.Write(fd, []byte("0"))
		for err == unix.EINTR {
			_, err = unix.Write(fd, []byte("0"))
		}
		unix.Close(fd)
		if err != nil {
			return &os.PathError{Op: "write", Path: f, Err: err}
		}
	}
	return nil
}

// Path is the group's path relative to the top of a hierarchy.
func (g *Group) Path() string { return g.path }

// Limits are the limits the group was made with.
func (g *Group) Limits() Limits { return g.limits }

func v1Resources(l Limits) *specs.LinuxResources {
	r := &specs.LinuxResources{}
	if l.MemoryMax > 0 {
		mem := l.MemoryMax
		r.Memory = &specs.LinuxMemory{Limit: &mem}
		if _, err := os.Stat(filepath.Join(Mountpoint, "memory", "memory.memsw.limit_in_bytes")); err == nil {
			// Memory plus swap: the limit holds, rather than spill to swap.
			sw := l.MemoryMax
			r.Memory.Swap = &sw
		}
	}
	if l.CPU > 0 {
		period := uint64(CPUPeriod / time.Microsecond)
		quota := int64(l.CPU * float64(period))
		r.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	if l.PIDsMax > 0 {
		n := l.PIDsMax
		r.Pids = &specs.LinuxPids{Limit: &n}
	}
	return r
}

func v2Resources(l Limits) *cgroup2.Resources {
	r := &cgroup2.Resources{}
	if l.MemoryMax > 0 {
		mem := l.MemoryMax
		zero := int64(0)
		r.Memory = &cgroup2.Memory{Max: &mem, Swap: &zero}
	}
	if l.CPU > 0 {
		period := uint64(CPUPeriod / time.Microsecond)
		quota := int64(l.CPU * float64(period))
		r.CPU = &cgroup2.CPU{Max: cgroup2.NewCPUMax(&quota, &period)}
	}
	if l.PIDsMax > 0 {
		r.Pids = &cgroup2.Pids{Max: l.PIDsMax}
	}
	return r
}

// Enter readies the calling thread so that the next child it forks (with
// attr) starts in the group (see the package doc): with v2 it sets attr's
// CgroupFD; with v1 it moves the thread into the group. The caller must
// hold the thread (runtime.LockOSThread) from Enter to leave, and fork on
// it in between ([os.StartProcess] forks on the calling thread). leave
// undoes what can be undone; when it returns an error (always with v1,
// whose thread stays in the group) the caller must not unlock the thread,
// so that it ends with its goroutine.
func (g *Group) Enter(attr *syscall.SysProcAttr) (leave func() error, err error) {
	if g.v2 != nil {
		dir, err := os.Open(filepath.Join(Mountpoint, g.path))
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", g.path, err)
		}
		attr.UseCgroupFD, attr.CgroupFD = true, int(dir.Fd())
		return dir.Close, nil
	}
	g.startMu.Lock()
	restore := func() {}
	if g.limits.PIDsMax > 0 {
		// The starting thread counts for the instant it is in the group.
		more, limit := g.limits.PIDsMax+1, g.limits.PIDsMax
		if err := g.v1.Update(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &more}}); err != nil {
			g.startMu.Unlock()
			return nil, fmt.Errorf("cgroup %s: %w", g.path, err)
		}
		restore = func() { _ = g.v1.Update(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}) }
	}
	leave = func() error {
		defer g.startMu.Unlock()
		defer restore()
		return g.goBack()
	}
	if err := moveSelf(g.enter); err != nil {
		// It may have joined some: leave fails too, and the thread ends.
		_ = leave()
		return nil, fmt.Errorf("cgroup %s: join: %w", g.path, err)
	}
	return leave, nil
}

// goBack returns the calling thread to the daemon's own v1 cgroups, before
// Enter's caller lets go of the group: while a thread of the daemon is in
// it, the daemon's pid is listed in it, and a kill or a freeze of the
// group would reach the daemon. [Group.Kill] waits for it (startMu).
func (g *Group) goBack() error {
	return moveSelf(g.back)
}

// Start runs start, which must fork a child with attr on the calling
// goroutine, on a thread of its own that [Group.Enter]s the group first;
// the thread is given back to the Go runtime only if it left the group.
func (g *Group) Start(attr *syscall.SysProcAttr, start func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		leave, err := g.Enter(attr)
		if err != nil {
			errc <- err // never unlocked: the thread ends with us
			return
		}
		err = start()
		if leave() == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// thawLeftover thaws a v1 group a daemon that died while it killed the
// group left frozen: a start into it would freeze the starting thread, and
// its processes could not even die. It reads freezer.state itself, one
// read: the library's State first stats the group in every controller,
// and every start, and every instance re-adopted at a cold start, asks
// (at 10,000 services, near a tenth of the cold start).
func (g *Group) thawLeftover() error {
	g.startMu.Lock()
	defer g.startMu.Unlock()
	if g.frozen() {
		if err := g.v1.Thaw(); err != nil {
			return fmt.Errorf("cgroup %s: thaw what a dead daemon left frozen: %w", g.path, err)
		}
	}
	return nil
}

// frozen reports whether the v1 group is frozen, or being frozen: its
// freezer.state says anything but THAWED. A state that cannot be read is
// taken as thawed (a group gone meanwhile has nothing to thaw).
func (g *Group) frozen() bool {
	b, err := os.ReadFile(filepath.Join(Mountpoint, string(cgroup1.Freezer), g.path, "freezer.state"))
	return err == nil && !strings.EqualFold(strings.TrimSpace(string(b)), string(cgroup1.Thawed))
}

// PIDs lists the processes in the group and in any cgroup a process of
// it made below it. It reads cgroup.procs itself rather than through the
// library, whose listing stats every file of every directory it walks:
// every end of a service lists its group, and at a thousand services
// that walk was most of the cost of stopping them all.
func (g *Group) PIDs() ([]int, error) {
	dir := filepath.Join(Mountpoint, g.path)
	if g.v2 == nil {
		dir = filepath.Join(Mountpoint, string(cgroup1.Freezer), g.path)
	}
	pids, err := procsUnder(dir, nil)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", g.path, err)
	}
	return pids, nil
}

// procsUnder appends to pids the processes listed in dir's cgroup.procs
// and, recursively, in its child cgroups'. A directory removed meanwhile
// holds no process.
func procsUnder(dir string, pids []int) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) {
		return pids, nil
	}
	if err != nil {
		return nil, err
	}
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s/cgroup.procs: %q is not a pid", dir, f)
		}
		if !slices.Contains(pids, pid) {
			pids = append(pids, pid)
		}
	}
	var st unix.Stat_t
	if unix.Lstat(dir, &st) == nil && st.Nlink == 2 {
		// cgroupfs counts a directory's links as 2 and one per
		// subdirectory: none here, so no listing (a cold start of
		// 10,000 services would list 10,000 of them).
		return pids, nil
	}
	subs, err := subdirs(dir)
	if err != nil {
		return nil, err
	}
	for _, sub := range subs {
		if pids, err = procsUnder(filepath.Join(dir, sub), pids); err != nil {
			return nil, err
		}
	}
	return pids, nil
}

// Kill SIGKILLs every process in the group and returns once the group is
// empty, or with ctx's error if it is not by then (a process stuck in the
// kernel). An empty group is not an error.
func (g *Group) Kill(ctx context.Context) error {
	delay := time.Millisecond
	for {
		pids, err := g.PIDs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if err := g.killOnce(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup %s: %d processes left: %w", g.path, len(pids), ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// killOnce sends SIGKILL to every process in the group once.
func (g *Group) killOnce() error {
	if g.v2 != nil {
		if err := g.v2.Kill(); err != nil {
			return fmt.Errorf("cgroup %s: kill: %w", g.path, err)
		}
		return nil
	}
	// No thread of the daemon is in the group while it is frozen and
	// killed (see goBack).
	g.startMu.Lock()
	defer g.startMu.Unlock()
	// Frozen, no process forks or exits, so no pid listed is reused
	// before it is signalled. A frozen process still takes SIGKILL at
	// the thaw.
	frozen := g.v1.Freeze() == nil
	pids, err := g.PIDs()
	if err == nil {
		self := os.Getpid()
		for _, pid := range pids {
			if pid != self {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	if frozen {
		if terr := g.v1.Thaw(); terr != nil && err == nil {
			err = terr
		}
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: kill: %w", g.path, err)
	}
	return nil
}

// OOMKills is how many processes of the group the OOM killer has ended
// since the group was made: v1 memory.oom_control's oom_kill, v2
// memory.events' oom_kill. It reads that one file: the library reads a
// counter only as part of a full Stat, which costs a thousand times more,
// and every start and end of a service reads it. A v1 group made without
// a memory limit joins no memory cgroup: it has no OOM kill to tell, and
// nothing is read.
func (g *Group) OOMKills() (uint64, error) {
	if g.v1 != nil && len(g.joined) > 0 && !slices.Contains(g.joined, cgroup1.Memory) {
		return 0, nil
	}
	file, dir := "memory.oom_control", filepath.Join(Mountpoint, "memory", g.path)
	if g.v2 != nil {
		file, dir = "memory.events", filepath.Join(Mountpoint, g.path)
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil // no memory controller here: no OOM kill to tell
	}
	if err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", g.path, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cgroup %s: %s: %w", g.path, file, err)
			}
			return n, nil
		}
	}
	return 0, nil
}

// CPUStat is a group's CPU accounting since it was made.
type CPUStat struct {
	// Usage is the CPU time its processes used: v1 cpuacct.usage, v2
	// cpu.stat's usage_usec.
	Usage time.Duration
	// Periods is how many scheduling periods ([CPUPeriod]) with a CPU
	// limit in force had the group runnable (cpu.stat's nr_periods): with
	// Usage, the share of a core it got, measured by the kernel's clock.
	Periods uint64
}

// CPU reads the group's CPU accounting.
func (g *Group) CPU() (CPUStat, error) {
	if g.v2 != nil {
		st, err := g.v2.Stat()
		if err != nil {
			return CPUStat{}, fmt.Errorf("cgroup %s: %w", g.path, err)
		}
		c := st.GetCPU()
		return CPUStat{Usage: time.Duration(c.GetUsageUsec()) * time.Microsecond, Periods: c.GetNrPeriods()}, nil
	}
	st, err := g.v1.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return CPUStat{}, fmt.Errorf("cgroup %s: %w", g.path, err)
	}
	c := st.GetCPU()
	return CPUStat{Usage: time.Duration(c.GetUsage().GetTotal()), Periods: c.GetThrottling().GetPeriods()}, nil
}

// Delete removes the group; it must be empty (see [Group.Kill]).
func (g *Group) Delete() error {
	var err error
	if g.v2 != nil {
		err = g.v2.Delete()
	} else {
		err = g.v1.Delete()
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: delete: %w", g.path, err)
	}
	return nil
}

// Ref names a service's cgroup.
type Ref struct{ Tenant, Name string }

// Members lists the processes in every service cgroup of the installation
// that holds any (those below a service's cgroup included), by service.
// The calling process is left out: a daemon thread is in a service's
// cgroup for the instant it forks a child there (see [Group.Enter]). On
// v1 the freezer hierarchy, which every service's cgroup joins, is read.
func (m *Manager) Members() (map[Ref][]int, error) {
	var top string
	switch m.version {
	case V1:
		top = filepath.Join(Mountpoint, string(cgroup1.Freezer), m.root)
	case V2:
		top = filepath.Join(Mountpoint, m.root)
	default:
		return nil, nil
	}
	tenants, err := subdirs(top)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", m.root, err)
	}
	var refs []Ref
	for _, tenant := range tenants {
		names, err := subdirs(filepath.Join(top, tenant))
		if err != nil {
			return nil, fmt.Errorf("cgroup %s/%s: %w", m.root, tenant, err)
		}
		for _, name := range names {
			refs = append(refs, Ref{Tenant: tenant, Name: name})
		}
	}
	// Each service's cgroup is read on its own: with 10,000 services
	// these reads are a cold start's largest cost, and the kernel serves
	// them in parallel.
	found := make([][]int, len(refs))
	errs := make([]error, len(refs))
	self := os.Getpid()
	parallel.Each(len(refs), membersReaders, func(i int) {
		pids, err := procsUnder(filepath.Join(top, refs[i].Tenant, refs[i].Name), nil)
		if err != nil {
			errs[i] = fmt.Errorf("cgroup %s: %w", m.Path(refs[i].Tenant, refs[i].Name), err)
			return
		}
		found[i] = slices.DeleteFunc(pids, func(pid int) bool { return pid == self })
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := map[Ref][]int{}
	for i, pids := range found {
		if len(pids) > 0 {
			out[refs[i]] = pids
		}
	}
	return out, nil
}

// membersReaders is how many cgroups [Manager.Members] reads at once.
const membersReaders = 8

// subdirs lists the directories in dir; a dir that does not exist has
// none.
func subdirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Prune removes every empty cgroup of the installation, deepest first, and
// its root if nothing is left under it; a cgroup that still holds a process
// stays. A daemon that stops cleanly calls it, so that it leaves nothing
// behind; tests call it to leak no cgroup.
func (m *Manager) Prune() {
	var tops []string
	switch m.version {
	case V1:
		for _, n := range v1Controllers {
			tops = append(tops, filepath.Join(Mountpoint, string(n)))
		}
	case V2:
		tops = []string{Mountpoint}
	default:
		return
	}
	for _, top := range tops {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(top, m.root), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			d := dirs[i]
			_ = unix.Rmdir(d)
		}
	}
}
