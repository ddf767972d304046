package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/oklog/ulid/v2"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/kernel"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// Defaults for [Options].
const (
	DefaultPython            = "/usr/bin/python3"
	DefaultKernel            = "python3"
	DefaultHeartbeatInterval = time.Second
	DefaultHeartbeatTimeout  = 2 * time.Second
	DefaultHeartbeatMisses   = 3
	DefaultReadyTimeout      = 60 * time.Second
	DefaultMaxOutputBytes    = 256 << 10
	DefaultOutputSyncEvery   = time.Second
	DefaultAssetTTL          = 24 * time.Hour
	DefaultCancelGrace       = 5 * time.Second
	// MaxCodeBytes bounds the code of one task.
	MaxCodeBytes = 256 << 10
	// ServicePrefix starts the name of every kernel service:
	// "session.NAME" runs session NAME's kernel.
	ServicePrefix = "session."
	// MaxNameLen is the longest session name (a service name, less the
	// prefix).
	MaxNameLen = state.MaxNameLen - len(ServicePrefix)
)

// Options configure [Open]. DataDir is required; zero fields mean the
// defaults.
type Options struct {
	// DataDir is Solo's data directory; sessions keep their connection
	// files, checkpoints and checkpoint key under DataDir/sessions.
	DataDir string
	// Python is the interpreter kernels run with when a session names
	// none. Default DefaultPython (Debian's, which python3-ipykernel
	// installs into).
	Python string
	// HeartbeatInterval, HeartbeatTimeout and HeartbeatMisses: a kernel
	// that misses HeartbeatMisses pings in a row (each waited for
	// HeartbeatTimeout, one every HeartbeatInterval) is hung: it is killed
	// (identity-checked) and its service restarts it.
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	HeartbeatMisses   int
	// ReadyTimeout bounds connecting to a kernel that runs. Default
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// MaxOutputBytes bounds the rendered outputs kept per task (in its
	// output file, across its attempts). Default DefaultMaxOutputBytes.
	MaxOutputBytes int
	// OutputSyncEvery is the longest a running task's output stays in its
	// file unsynced while output flows (a write reaches the file at once;
	// this bounds what a crash of the host, not of the daemon, loses).
	// The file is always synced before the task's end is recorded.
	// Default DefaultOutputSyncEvery.
	OutputSyncEvery time.Duration
	// AssetTTL is the lease of an asset: a task's output from the task's
	// end, a file from when it was added, each renewed to AssetTTL from
	// the time it is read or listed. Default DefaultAssetTTL.
	AssetTTL time.Duration
	// Clock is the time of asset leases and their sweep. Default the
	// system's wall clock.
	Clock Clock
	// CancelGrace is how long a cancelled task may keep running after its
	// interrupt before its kernel is killed (identity-checked) and
	// restarted: an interrupt that reaches the kernel before it starts the
	// code is lost. Default DefaultCancelGrace.
	CancelGrace time.Duration
	// Logger defaults to a null logger.
	Logger hclog.Logger
	// Node is this node's name in a cluster, "" on a single machine. A
	// session runs on the node that created it (see the package doc's #
	// Cluster): this manager runs the tasks of its own node's sessions
	// only, and answers for the others from the log.
	Node string
}

// Host is what the manager needs of the runtime: the log, the runtime's
// fold of it, and the kernel services. [solo.Runtime] provides it; package
// sessiontest has one for tests without kernels.
//
// The manager keeps no fold and no subscription of its own: the host's
// follower, the one subscriber that folds the log, holds the sessions
// ([state.Sessions], folded with the services), and the manager reads
// them there ([Host.ReadSessions]), waits on it ([Host.WaitFolded]) and is
// told by it of each envelope folded ([Host.Watch]).
type Host interface {
	// Append records payloads about key durably, in order, as one batch,
	// and returns the position of the last.
	Append(ctx context.Context, key state.Key, ps ...state.Payload) (uint64, error)
	// ReadSessions calls fn with the sessions as the host has folded them
	// so far (from its latest snapshot and the tail). fn runs under the
	// fold's lock, so that they do not change under it: it must be quick,
	// take no lock, call nothing of the host, and keep neither ss nor
	// anything it points to (it copies what it needs).
	ReadSessions(fn func(ss *state.Sessions))
	// WaitFolded returns nil once the envelope at pos is folded and every
	// watcher was called with it, ctx's error if ctx ends first, or an
	// error if the host's follower stopped first.
	WaitFolded(ctx context.Context, pos uint64) error
	// Watch calls fn with each envelope folded from now on, in log order,
	// on the host's follower goroutine, after the fold and before
	// WaitFolded of its position returns (an envelope folded before Watch
	// returns may be told too). fn must be quick and must not block, wait
	// for the fold or call stop: the host folds nothing else while it
	// runs, and writes wait for the fold (I8). stop ends the calls and
	// returns once no call of fn runs; it is idempotent.
	Watch(fn func(env eventstore.Envelope)) (stop func())
	// RunAs says whom a kernel of tenant, created by the caller of ctx,
	// runs as: confined false means the daemon's own user; otherwise the
	// uid and gid its tenant's policy gives it (recorded, when it is the
	// tenant's dynamic user, before RunAs returns).
	RunAs(ctx context.Context, tenant string) (uid, gid uint32, confined bool, err error)
	// Deploy runs a kernel service; Kill stops it for good.
	Deploy(ctx context.Context, spec state.Spec) error
	Kill(ctx context.Context, tenant, name string) error
	// Signal signals the kernel process ref, only if it still is that
	// process (pid, start time and boot id: I4).
	Signal(ref state.KernelRef, sig syscall.Signal) error
}

// Manager runs every session's queue. See the package doc.
type Manager struct {
	opts  Options
	host  Host
	log   hclog.Logger
	dir   string // DataDir/sessions
	key   []byte // checkpoint key
	clock Clock

	// leaseMu serialises the decisions about leases: a renewal (a read)
	// and the sweep's collection never interleave, so a read asset is
	// never collected under its reader. It is taken before mu.
	leaseMu sync.Mutex
	// sweepWake tells the sweeper that the assets changed.
	sweepWake chan struct{}

	// mu guards what follows. It is never held while reading the host's
	// fold, nor across a call of the host.
	mu      sync.Mutex
	applied chan struct{} // closed and replaced after each envelope folded
	workers map[state.Key]*worker
	live    map[string]*liveTask
	closed  bool

	stopWatch func() // ends the host's calls of folded
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	done      chan struct{} // closed by Close
}

// Open starts a worker for every live session of the host's fold: it
// reconnects to the session's kernel (re-adopted by the
// runtime's recovery, or restarted), settles the task that was running
// when the daemon stopped, and runs the pending tasks in order. It returns
// without waiting for any kernel.
func Open(ctx context.Context, host Host, opts Options) (*Manager, error) {
	if opts.DataDir == "" {
		return nil, errors.New("open sessions: Options.DataDir is required")
	}
	if opts.Python == "" {
		opts.Python = DefaultPython
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if opts.HeartbeatTimeout <= 0 {
		opts.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if opts.HeartbeatMisses <= 0 {
		opts.HeartbeatMisses = DefaultHeartbeatMisses
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	if opts.MaxOutputBytes <= 0 {
		opts.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if opts.OutputSyncEvery <= 0 {
		opts.OutputSyncEvery = DefaultOutputSyncEvery
	}
	if opts.AssetTTL <= 0 {
		opts.AssetTTL = DefaultAssetTTL
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.CancelGrace <= 0 {
		opts.CancelGrace = DefaultCancelGrace
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	dir := filepath.Join(opts.DataDir, "sessions")
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("open sessions: %w", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil { // an older data dir's 0700
		return nil, fmt.Errorf("open sessions: %w", err)
	}
	key, err := loadKey(filepath.Join(dir, "checkpoint.key"))
	if err != nil {
		return nil, fmt.Errorf("open sessions: %w", err)
	}
	m := &Manager{
		opts: opts, host: host, log: opts.Logger, dir: dir, key: key, clock: opts.Clock,
		sweepWake: make(chan struct{}, 1),
		applied:   make(chan struct{}), workers: map[state.Key]*worker{}, live: map[string]*liveTask{},
		done: make(chan struct{}),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	// Watch first, then read: a session created meanwhile is told, or
	// read, or both (starting a worker is idempotent).
	m.stopWatch = host.Watch(m.folded)
	var live []state.Key
	m.read(func(ss *state.Sessions) {
		for _, s := range ss.List() {
			if s.Runs(opts.Node) {
				live = append(live, state.Key{Tenant: s.Tenant, Name: s.Name})
			}
		}
	})
	m.mu.Lock()
	for _, key := range live {
		m.startWorkerLocked(key)
	}
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.sweeper()
	}()
	return m, nil
}

// Close stops every worker and the sweeper, and stops watching the host's
// fold. It records nothing: a task that runs is settled by the next Open.
// The kernels keep running (they are services; the runtime decides).
// Close is idempotent. Close the manager before its host's follower stops.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.stopWatch()
	m.cancel()
	m.wg.Wait()
	close(m.done)
	return nil
}

// read calls fn with the host's sessions; see [Host.ReadSessions].
func (m *Manager) read(fn func(ss *state.Sessions)) { m.host.ReadSessions(fn) }

// folded is told by the host of each envelope it folded, on the host's
// follower goroutine: it starts the worker of a session that became live,
// wakes the worker of the session concerned (a kernel service's start or
// exit concerns its session), the sweeper when a lease may have changed,
// and everyone waiting for a change. It never blocks.
func (m *Manager) folded(env eventstore.Envelope) {
	key := state.Key{Tenant: env.Tenant, Name: env.Subject}
	typ := state.EventType(env.Type)
	var known, live bool
	m.read(func(ss *state.Sessions) {
		if sk, ok := ss.SessionOfService(key); ok && (typ == state.TypeServiceStarted || typ == state.TypeServiceExited) {
			key = sk
		}
		s, ok := ss.Session(key.Tenant, key.Name)
		known, live = ok, s.Runs(m.opts.Node)
	})
	if wakesSweeper(typ) {
		m.wakeSweeper()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if known {
		if live && !m.closed {
			m.startWorkerLocked(key)
		}
		if w := m.workers[key]; w != nil {
			w.wake()
		}
	}
	close(m.applied)
	m.applied = make(chan struct{})
}

// changed returns a channel closed once the host has folded another
// envelope. Take it before reading what it should wake a wait for.
func (m *Manager) changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied
}

func (m *Manager) startWorkerLocked(key state.Key) {
	if w, ok := m.workers[key]; ok && !w.stopped() {
		return
	}
	w := newWorker(m, key)
	m.workers[key] = w
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run()
	}()
}

// WaitFolded returns once the host has folded the log up to position pos
// and the manager has taken it in; or ctx's error; or [ErrClosed] once
// the manager is closed; or the host's error if its follower stopped. A
// caller that appended to the log itself waits with it before reading
// through the manager.
func (m *Manager) WaitFolded(ctx context.Context, pos uint64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(m.ctx, func() { cancel(ErrClosed) })()
	if err := m.host.WaitFolded(ctx, pos); err != nil {
		if errors.Is(context.Cause(ctx), ErrClosed) {
			return ErrClosed
		}
		return err
	}
	return nil
}

// append records payloads about the session key and returns once the
// host has folded them (read-your-writes).
func (m *Manager) append(ctx context.Context, key state.Key, ps ...state.Payload) error {
	pos, err := m.host.Append(ctx, key, ps...)
	if err != nil {
		return err
	}
	return m.host.WaitFolded(ctx, pos)
}

// session returns a copy of a session.
func (m *Manager) session(key state.Key) (s *state.Session, ok bool) {
	m.read(func(ss *state.Sessions) {
		if x, found := ss.Session(key.Tenant, key.Name); found {
			s, ok = x.Clone(), true
		}
	})
	return s, ok
}

// task returns a copy of a task.
func (m *Manager) task(id string) (t *state.Task, ok bool) {
	m.read(func(ss *state.Sessions) {
		if x, found := ss.Task(id); found {
			t, ok = x.Clone(), true
		}
	})
	return t, ok
}

func (m *Manager) sessionDir(key state.Key) string {
	return filepath.Join(m.dir, key.Tenant, key.Name)
}

// giveKernel lets a kernel that runs as uid and gid (its tenant's user,
// not the daemon's) use its session's files, and nothing more:
//
//	sessions/TENANT, sessions/TENANT/NAME    root, 0711: it passes through, lists nothing
//	kernel.json                              root, group gid, 0640: it reads its key
//	kernels/, ipython/                       uid:gid, 0700: its own
//	checkpoints/                             root, 0711: the daemon makes each pickle
//	                                         file there and hands it over (kernelFile)
//
// So a kernel can neither plant a link where the daemon writes, nor reach
// another tenant's session (0700 dirs of another uid, or root's).
func (m *Manager) giveKernel(key state.Key, uid, gid uint32) error {
	dir := m.sessionDir(key)
	if err := os.MkdirAll(filepath.Join(dir, "ipython"), 0o700); err != nil {
		return err
	}
	for _, step := range []struct {
		path     string
		uid, gid int
		mode     os.FileMode
	}{
		{filepath.Dir(dir), 0, 0, 0o711},
		{dir, 0, 0, 0o711},
		{m.connFile(key), 0, int(gid), 0o640},
		{m.kernelsDir(key), int(uid), int(gid), 0o700},
		{filepath.Join(dir, "ipython"), int(uid), int(gid), 0o700},
		{filepath.Join(dir, "checkpoints"), 0, 0, 0o711},
	} {
		if err := os.Lchown(step.path, step.uid, step.gid); err != nil {
			return err
		}
		if err := os.Chmod(step.path, step.mode); err != nil {
			return err
		}
	}
	return nil
}

// kernelFile hands a file the daemon just made in key's checkpoints
// directory to the kernel, when the kernel runs as a user of its own (the
// owner of its kernels directory), so that it may write or read it.
func (m *Manager) kernelFile(key state.Key, f *os.File) error {
	fi, err := os.Stat(m.kernelsDir(key))
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == os.Geteuid() {
		return nil
	}
	return f.Chown(int(st.Uid), int(st.Gid))
}

// connFile is the session's connection file: its kernel's key, ports 0.
// Each start of the kernel copies it to a file of its own ([launcher]).
func (m *Manager) connFile(key state.Key) string {
	return filepath.Join(m.sessionDir(key), "kernel.json")
}

// kernelsDir holds the connection file of each kernel instance, named by
// its pid, written by the instance itself ([launcher]).
func (m *Manager) kernelsDir(key state.Key) string {
	return filepath.Join(m.sessionDir(key), "kernels")
}

// launcher is the kernel service's program, run by `PYTHON -c launcher
// CONNFILE KERNELSDIR`. Each start copies the session's connection file
// (the key; ports 0) to KERNELSDIR/PID.json, removes the files of earlier
// instances, and runs ipykernel on its copy: ipykernel binds ports of its
// own choosing and writes them into that copy. So ports are never picked
// by one process and bound later by another (someone else could take them
// in between), and the worker never reads the ports of an earlier instance:
// it waits for the file of the pid it dials ([Manager.kernelConnection]).
const launcher = `import json, os, sys
if sys.path and sys.path[0] == "":
    del sys.path[0]
conn, run = sys.argv[1], sys.argv[2]
with open(conn) as f:
    info = json.load(f)
for p in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"):
    info[p] = 0
os.makedirs(run, mode=0o700, exist_ok=True)
mine = "%d.json" % os.getpid()
for n in os.listdir(run):
    if n != mine:
        os.remove(os.path.join(run, n))
path = os.path.join(run, mine)
fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(info, f)
os.rename(path + ".tmp", path)
sys.argv = [sys.argv[0], "-f", path]
from ipykernel import kernelapp
kernelapp.launch_new_instance()
`

// kernelConnection waits until the kernel instance ref has written its
// ports, and returns its connection. A session created before kernels
// wrote their own ports has them in its connection file: that is used.
func (m *Manager) kernelConnection(ctx context.Context, key state.Key, ref state.KernelRef) (kernel.ConnectionInfo, error) {
	if info, err := kernel.ReadConnectionFile(m.connFile(key)); err == nil {
		return info, nil
	}
	return kernel.WaitConnectionFile(ctx, filepath.Join(m.kernelsDir(key), fmt.Sprintf("%d.json", ref.PID)))
}

// outputRel is the path of a task's output file in its session's
// directory.
func outputRel(id string) string { return filepath.Join("tasks", id+".out") }

func (m *Manager) outputPath(key state.Key, id string) string {
	return filepath.Join(m.sessionDir(key), outputRel(id))
}

func (m *Manager) checkpointPath(key state.Key, label string) string {
	return filepath.Join(m.sessionDir(key), "checkpoints", label+".ckpt")
}

func (m *Manager) writable() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// validKey checks a session's (tenant, name); the tenant defaults.
func validKey(tenant, name string) (state.Key, error) {
	key, err := state.NewKey(tenant, name)
	if err != nil {
		return state.Key{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(name) > MaxNameLen {
		return state.Key{}, fmt.Errorf("%w: name %q is over %d bytes", ErrInvalid, name, MaxNameLen)
	}
	return key, nil
}

// View is a session as List and Get report it, and as the API sends it:
// see [wire.SessionView], where it is defined.
type View = wire.SessionView

func viewOf(s *state.Session) View {
	v := View{Tenant: s.Tenant, Name: s.Name, Kernel: s.Kernel, Service: s.Service, State: "starting",
		Pending: len(s.Queue), Running: s.Running, Done: s.Done, StateLost: s.Lost, CreatedAt: s.CreatedAt,
		Node: s.Node, Lost: s.LostText()}
	switch {
	case s.Removed:
		v.State = "removed"
	case s.LostNode != "":
		v.State = "lost"
	case s.Bound != nil && s.Instance != nil && !s.Exited && *s.Bound == *s.Instance:
		v.State, v.PID = "ready", s.Bound.PID
	}
	for l := range s.Checkpoints {
		v.Checkpoints = append(v.Checkpoints, l)
	}
	return v
}

// Create makes a session: it writes the kernel's connection file (a fresh
// key, ports 0, mode 0600) under the data dir, records session_created,
// and deploys the kernel as the service "session.NAME" running ipykernel
// through the [launcher]. It returns once the kernel's
// service is deployed, before the kernel is ready: tasks queue meanwhile.
// kernel must be "python3" (or ""); python "" means [Options.Python].
func (m *Manager) Create(ctx context.Context, tenant, name, kernelName, python string) (View, error) {
	if err := m.writable(); err != nil {
		return View{}, err
	}
	key, err := validKey(tenant, name)
	if err != nil {
		return View{}, fmt.Errorf("create session: %w", err)
	}
	if kernelName == "" {
		kernelName = DefaultKernel
	}
	if kernelName != DefaultKernel {
		return View{}, fmt.Errorf("create session %s: %w: kernel %q (only %q)", key, ErrInvalid, kernelName, DefaultKernel)
	}
	if python == "" {
		python = m.opts.Python
	}
	if s, ok := m.session(key); ok && s.Live() {
		return View{}, fmt.Errorf("create session %s: %w", key, ErrExists)
	}
	spec, err := m.prepareKernel(ctx, key, kernelName, python)
	if err != nil {
		return View{}, fmt.Errorf("create session %s: %w", key, err)
	}
	if err := m.append(ctx, key, state.SessionCreated{Kernel: kernelName, Service: spec.Name, Node: m.opts.Node}); err != nil {
		return View{}, fmt.Errorf("create session %s: %w", key, err)
	}
	if err := m.host.Deploy(ctx, spec); err != nil {
		// The session cannot run: undo it, so that the name is free.
		if rerr := m.append(context.WithoutCancel(ctx), key, state.SessionRemoved{Reason: "kernel deploy failed: " + err.Error()}); rerr != nil {
			m.log.Error("cannot record the removal of a session whose kernel did not deploy", "session", key, "error", rerr)
		}
		return View{}, fmt.Errorf("create session %s: deploy kernel: %w", key, err)
	}
	s, _ := m.session(key)
	return viewOf(s), nil
}

// Restart runs a lost session (its node died, see [state.SessionLost])
// again on this node, empty: session_moved, then its kernel service is
// deployed again, here only. Nothing of the old kernel is carried over:
// not its variables, not its queue (its tasks failed with reason
// node_lost), not its checkpoint files (they were on the dead node's
// disk). python "" means [Options.Python]. A session that is not lost
// gives [ErrNotLost], naming its node.
func (m *Manager) Restart(ctx context.Context, tenant, name, python string) (View, error) {
	if err := m.writable(); err != nil {
		return View{}, err
	}
	key, err := validKey(tenant, name)
	if err != nil {
		return View{}, fmt.Errorf("restart session: %w", err)
	}
	s, ok := m.session(key)
	switch {
	case !ok || !s.Live():
		return View{}, fmt.Errorf("restart session %s: %w", key, ErrNotFound)
	case s.LostNode == "":
		return View{}, fmt.Errorf("restart session %s: %w: it runs on node %s", key, ErrNotLost, cmp.Or(s.Node, "this one"))
	}
	if python == "" {
		python = m.opts.Python
	}
	spec, err := m.prepareKernel(ctx, key, s.Kernel, python)
	if err != nil {
		return View{}, fmt.Errorf("restart session %s: %w", key, err)
	}
	if err := m.append(ctx, key, state.SessionMoved{Node: m.opts.Node}); err != nil {
		return View{}, fmt.Errorf("restart session %s: %w", key, err)
	}
	if err := m.host.Deploy(ctx, spec); err != nil {
		return View{}, fmt.Errorf("restart session %s: deploy kernel: %w", key, err)
	}
	s, _ = m.session(key)
	return viewOf(s), nil
}

// prepareKernel makes the session's directory and kernel connection file
// on this node, gives them to the kernel's user if it is confined, and
// returns the kernel service's spec: in a cluster, placed on this node
// only.
func (m *Manager) prepareKernel(ctx context.Context, key state.Key, kernelName, python string) (state.Spec, error) {
	if !filepath.IsAbs(python) {
		return state.Spec{}, fmt.Errorf("%w: python %q must be an absolute path", ErrInvalid, python)
	}
	dir := m.sessionDir(key)
	for _, d := range []string{filepath.Join(dir, "checkpoints"), m.kernelsDir(key)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return state.Spec{}, err
		}
	}
	info, err := kernel.NewConnectionInfo("127.0.0.1", kernelName)
	if err != nil {
		return state.Spec{}, err
	}
	if err := kernel.WriteConnectionFile(m.connFile(key), info); err != nil {
		return state.Spec{}, err
	}
	uid, gid, confined, err := m.host.RunAs(ctx, key.Tenant)
	if err != nil {
		return state.Spec{}, err
	}
	if confined {
		if err := m.giveKernel(key, uid, gid); err != nil {
			return state.Spec{}, err
		}
	}
	service := ServicePrefix + key.Name
	spec := state.Spec{
		Tenant: key.Tenant, Name: service,
		Command: []string{python, "-c", launcher, m.connFile(key), m.kernelsDir(key)},
		Env:     map[string]string{"IPYTHONDIR": filepath.Join(dir, "ipython"), "JUPYTER_PLATFORM_DIRS": "1"},
		Dir:     dir, Restart: state.RestartAlways, StopTimeout: state.Duration(5 * time.Second),
	}
	if m.opts.Node != "" {
		spec.Nodes = []string{m.opts.Node}
	}
	return spec, nil
}

// elsewhere refuses, with [ErrElsewhere] naming the node, what only the
// disk of the node key's session runs on has, when that is another node.
func (m *Manager) elsewhere(key state.Key) error {
	s, ok := m.session(key)
	if !ok || s.Node == m.opts.Node {
		return nil
	}
	return fmt.Errorf("%w: session %s runs on node %s, whose disk has its files: ask that node (solo --addr)", ErrElsewhere, key, s.Node)
}

// Remove ends a session: session_removed (its pending and running tasks
// fail with reason session_removed), then its kernel service is killed and
// its connection files deleted. Checkpoints are kept.
func (m *Manager) Remove(ctx context.Context, tenant, name string) error {
	if err := m.writable(); err != nil {
		return err
	}
	key, err := validKey(tenant, name)
	if err != nil {
		return fmt.Errorf("remove session: %w", err)
	}
	s, ok := m.session(key)
	if !ok || !s.Live() {
		return fmt.Errorf("remove session %s: %w", key, ErrNotFound)
	}
	if err := m.append(ctx, key, state.SessionRemoved{Reason: "requested"}); err != nil {
		return fmt.Errorf("remove session %s: %w", key, err)
	}
	m.mu.Lock()
	w := m.workers[key]
	m.mu.Unlock()
	if w != nil {
		w.stop()
	}
	if err := m.host.Kill(ctx, key.Tenant, s.Service); err != nil {
		return fmt.Errorf("remove session %s: kill kernel: %w", key, err)
	}
	os.Remove(m.connFile(key))
	os.RemoveAll(m.kernelsDir(key))
	return nil
}

// List returns the live sessions of tenant ("" for all), sorted.
func (m *Manager) List(tenant string) []View {
	out := []View{}
	m.read(func(ss *state.Sessions) {
		for _, s := range ss.List() {
			if s.Live() && (tenant == "" || s.Tenant == tenant) {
				out = append(out, viewOf(s))
			}
		}
	})
	return out
}

// Get returns one live session.
func (m *Manager) Get(tenant, name string) (View, error) {
	key, err := validKey(tenant, name)
	if err != nil {
		return View{}, err
	}
	s, ok := m.session(key)
	if !ok || !s.Live() {
		return View{}, fmt.Errorf("session %s: %w", key, ErrNotFound)
	}
	return viewOf(s), nil
}

// SubmitOptions are the options of one task.
type SubmitOptions struct {
	// Retryable lets the task run again, once the kernel is back, if it
	// was running when the daemon or its kernel died. Others fail with
	// reason interrupted.
	Retryable bool
}

// Submit queues code on a session and returns once task_submitted is
// durable (I1); the task runs after every task submitted before it.
func (m *Manager) Submit(ctx context.Context, tenant, name, code string, o SubmitOptions) (*state.Task, error) {
	if len(code) > MaxCodeBytes {
		return nil, fmt.Errorf("submit: %w: code is %d bytes, limit %d", ErrInvalid, len(code), MaxCodeBytes)
	}
	return m.submit(ctx, tenant, name, state.TaskSubmitted{Kind: state.TaskExec, Code: code, Retryable: o.Retryable})
}

// Checkpoint queues a checkpoint of the session's variables under label:
// the kernel pickles what it can (reporting what it cannot), and the file
// is signed and written atomically.
func (m *Manager) Checkpoint(ctx context.Context, tenant, name, label string) (*state.Task, error) {
	if err := state.ValidName(label); err != nil {
		return nil, fmt.Errorf("checkpoint: %w: label: %w", ErrInvalid, err)
	}
	return m.submit(ctx, tenant, name, state.TaskSubmitted{Kind: state.TaskCheckpoint, Label: label})
}

// Restore queues loading checkpoint label into the session's kernel. A
// checkpoint that does not verify fails the task (CheckpointRefused)
// before any of it reaches the kernel.
func (m *Manager) Restore(ctx context.Context, tenant, name, label string) (*state.Task, error) {
	if err := state.ValidName(label); err != nil {
		return nil, fmt.Errorf("restore: %w: label: %w", ErrInvalid, err)
	}
	return m.submit(ctx, tenant, name, state.TaskSubmitted{Kind: state.TaskRestore, Label: label})
}

func (m *Manager) submit(ctx context.Context, tenant, name string, p state.TaskSubmitted) (*state.Task, error) {
	if err := m.writable(); err != nil {
		return nil, err
	}
	key, err := validKey(tenant, name)
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	s, ok := m.session(key)
	if !ok || !s.Live() {
		return nil, fmt.Errorf("submit to %s: %w", key, ErrNotFound)
	}
	if s.LostNode != "" {
		return nil, fmt.Errorf("submit to %s: %w: %s", key, ErrLost, s.LostText())
	}
	p.ID = NewTaskID()
	if err := m.append(ctx, key, p); err != nil {
		return nil, fmt.Errorf("submit to %s: %w", key, err)
	}
	t, ok := m.task(p.ID)
	if !ok {
		// Removed between the check and the append: the fold ignored it.
		return nil, fmt.Errorf("submit to %s: %w", key, ErrNotFound)
	}
	return t, nil
}

// NewTaskID returns a fresh task id: a lowercase ULID.
func NewTaskID() string { return strings.ToLower(ulid.Make().String()) }

// Task returns a task.
func (m *Manager) Task(id string) (*state.Task, error) {
	t, ok := m.task(id)
	if !ok {
		return nil, fmt.Errorf("task %q: %w", id, ErrTaskNotFound)
	}
	return t, nil
}

// Wait returns the task once it is final, or ctx's error.
func (m *Manager) Wait(ctx context.Context, id string) (*state.Task, error) {
	for {
		ch := m.changed()
		c, ok := m.task(id)
		if !ok {
			return nil, fmt.Errorf("task %q: %w", id, ErrTaskNotFound)
		}
		if c.State.Final() {
			return c, nil
		}
		select {
		case <-ch:
		case <-m.done:
			return c, ErrClosed
		case <-ctx.Done():
			return c, ctx.Err()
		}
	}
}

// Cancel cancels a task: a pending one never runs (task_cancelled); a
// running one is interrupted and fails with reason cancelled. Cancelling a
// final task changes nothing. It returns the task as it is after the
// cancel was recorded.
func (m *Manager) Cancel(ctx context.Context, id string) (*state.Task, error) {
	if err := m.writable(); err != nil {
		return nil, err
	}
	t, ok := m.task(id)
	if !ok {
		return nil, fmt.Errorf("cancel: task %q: %w", id, ErrTaskNotFound)
	}
	if t.State.Final() {
		return t, nil
	}
	key := state.Key{Tenant: t.Tenant, Name: t.Session}
	m.mu.Lock()
	w := m.workers[key]
	m.mu.Unlock()
	if w == nil {
		return nil, fmt.Errorf("cancel: task %q: %w", id, ErrNotFound)
	}
	if err := w.cancel(ctx, id); err != nil {
		return nil, fmt.Errorf("cancel task %q: %w", id, err)
	}
	return m.Task(id)
}
