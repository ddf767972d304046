package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/solo-rt/solo/cgroup"
)

// StartOptions describe one OS process to start.
type StartOptions struct {
	// Argv is the program and its arguments; Argv[0] is resolved by
	// [LookPath], as run by Credential: looked up in the PATH of Env (the
	// daemon's if Env has none) when it has no slash, and taken relative to Dir when it is a
	// relative path with a slash. Required.
	Argv []string
	// Env is the full environment, as KEY=VALUE. Nil means the daemon's
	// own environment; an empty non-nil slice means an empty one.
	Env []string
	// Dir is the working directory; empty means the daemon's.
	Dir string
	// Credential, if set, is who the process runs as (see [Credential]);
	// nil means the daemon's own user and groups. Setting one needs root.
	Credential *Credential
	// Umask, if set, is the process's file mode creation mask; nil means
	// the daemon's.
	Umask *uint32
	// Output receives both stdout and stderr. It must be a file (see
	// [Logs.Open]), never a pipe held by the daemon, so that the service
	// neither dies of SIGPIPE nor loses output when the daemon dies: a pipe
	// or socket is refused with [ErrPipeOutput]. Nil means /dev/null.
	Output *os.File
	// ToStamper allows Output to be a pipe: the write end of a pipe whose
	// reader is a log stamper process (see [ProcessRunner.Stamper]), which
	// outlives the daemon as the service does. The daemon must not hold
	// the read end.
	ToStamper bool
	// Input is the process's stdin; nil means /dev/null.
	Input *os.File
	// Cgroup, if set, is the service's cgroup: the process is in it from
	// its first instruction ([cgroup.Group.Enter]), and [Process.Finish]
	// kills whatever is left in it.
	Cgroup *cgroup.Group
}

// Process is one OS process under supervision: either our own child made by
// [Start], or a process re-adopted after a daemon restart by [Adopt]. Both
// are handled the same way; only the exit status of an adopted one is
// [Exit.Unknown].
//
// A Process holds a pidfd (in its [Watch]) that was opened on the process
// and checked against its [Identity] once: by construction for [Start]
// (the unreaped child cannot change pid), with [Verify] for [Adopt]. A pidfd
// never changes what it refers to, so [Process.Signal] and
// [Process.SignalGroup] reach the recorded process or nothing (invariant I4),
// even after the pid is recycled.
//
// The methods are safe for concurrent use.
type Process struct {
	id     Identity
	watch  *Watch
	leader bool // leads its own process group
	child  bool // made by Start: we reap it and learn its status
	// cg is the service's cgroup, or nil; oomBase its OOM kill count when
	// the process started or was adopted.
	cg      *cgroup.Group
	oomBase uint64
}

// Start starts a process in its own process group (pgid = pid) with stdin
// from /dev/null and stdout and stderr on opts.Output, records its
// [Identity], and opens its [Watch]. The process is never waited on with
// [os.Process.Wait]; the caller learns its exit through [Process.Wait] and
// must then call [Process.Finish] (or use [Stop]) to reap it.
//
// Errors name the program: start "/bin/foo": ... ; an empty Argv gives
// [ErrNoArgv], a pipe or socket as Output [ErrPipeOutput].
func Start(opts StartOptions) (*Process, error) {
	if len(opts.Argv) == 0 {
		return nil, fmt.Errorf("start: %w", ErrNoArgv)
	}
	giveChildrenDefaultSignals()
	name := opts.Argv[0]
	fail := func(err error) (*Process, error) {
		return nil, fmt.Errorf("start %q: %w", name, filesError(err))
	}
	pathList, ok := envValue(opts.Env, "PATH")
	if !ok {
		pathList = os.Getenv("PATH")
	}
	path, err := LookPath(name, opts.Dir, pathList, opts.Credential)
	if err != nil {
		if opts.Dir != "" {
			if derr := CheckDir(opts.Dir, opts.Credential); derr != nil {
				return fail(fmt.Errorf("dir %s: %w", opts.Dir, derr))
			}
		}
		return fail(err)
	}
	stdin := opts.Input
	if stdin == nil {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			return fail(err)
		}
		defer devnull.Close()
		stdin = devnull
	}
	out := opts.Output
	if out != nil {
		fi, err := out.Stat()
		if err != nil {
			return fail(fmt.Errorf("output: %w", err))
		}
		if fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0 && !opts.ToStamper {
			return fail(fmt.Errorf("%w: %s", ErrPipeOutput, out.Name()))
		}
	} else {
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return fail(err)
		}
		defer devnull.Close()
		out = devnull
	}
	sys := &syscall.SysProcAttr{Setpgid: true}
	if c := opts.Credential; c != nil {
		sys.Credential = &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: c.Groups}
	}
	var oomBase uint64
	if opts.Cgroup != nil {
		n, err := opts.Cgroup.OOMKills()
		if err != nil {
			return fail(err)
		}
		oomBase = n
	}
	defer childStarting()() // registered before a zombie reaper can look (children.go)
	proc, err := startProcess(path, opts.Argv, &os.ProcAttr{
		Dir:   opts.Dir,
		Env:   opts.Env,
		Files: []*os.File{stdin, out, out},
		Sys:   sys,
	}, opts.Umask, opts.Cgroup)
	if err != nil {
		if opts.Dir != "" {
			// fork/exec blames the program for a chdir that failed.
			if derr := CheckDir(opts.Dir, opts.Credential); derr != nil {
				return fail(fmt.Errorf("dir %s: %w", opts.Dir, derr))
			}
		}
		return fail(err)
	}
	p, err := takeChild(proc)
	if err != nil {
		return fail(err)
	}
	p.cg, p.oomBase = opts.Cgroup, oomBase
	return p, nil
}

// startProcess is os.StartProcess with an umask of the child's own and in
// the service's cgroup. The umask belongs to a thread's file-system
// context, which Go's threads share: setting it for the whole daemon would
// race with every other start and file the daemon creates. So the fork
// runs on a goroutine locked to its thread that first unshares its
// file-system context (CLONE_FS) and sets the umask there; the child
// inherits that thread's. The goroutine then ends still locked, so the
// runtime ends that thread rather than reuse it with a changed context.
// The same thread enters the cgroup before the fork ([cgroup.Group.Enter])
// and leaves it after; it is given back to the runtime only if it had no
// umask to set and left the cgroup.
func startProcess(path string, argv []string, attr *os.ProcAttr, umask *uint32, cg *cgroup.Group) (*os.Process, error) {
	if umask == nil && cg == nil {
		return os.StartProcess(path, argv, attr)
	}
	type result struct {
		p   *os.Process
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		reusable := umask == nil
		if umask != nil {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				ch <- result{err: fmt.Errorf("umask: unshare the thread's file-system context: %w", err)}
				return
			}
			unix.Umask(int(*umask))
		}
		leave := func() error { return nil }
		if cg != nil {
			var err error
			if leave, err = cg.Enter(attr.Sys); err != nil {
				ch <- result{err: err}
				return
			}
		}
		p, err := os.StartProcess(path, argv, attr)
		if leave() != nil {
			reusable = false
		}
		if reusable {
			runtime.UnlockOSThread()
		}
		ch <- result{p, err}
	}()
	r := <-ch
	return r.p, r.err
}

// envValue returns the value of key in env (KEY=VALUE entries; the last
// one wins, as in execve's consumers).
func envValue(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// takeChild turns a just-started child into a Process and releases proc. On
// failure it kills and reaps the child, so nothing runs unwatched.
func takeChild(proc *os.Process) (*Process, error) {
	pid := proc.Pid
	abandon := func(err error) (*Process, error) {
		// Ours and unreaped: pid and pgid are still reserved.
		_ = unix.Kill(-pid, unix.SIGKILL)
		_, _ = proc.Wait()
		return nil, err
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return abandon(fmt.Errorf("pidfd_open %d: %w", pid, err))
	}
	id, err := ReadIdentity(pid)
	if err != nil {
		unix.Close(fd)
		return abandon(err)
	}
	w, err := newWatch(pid, fd)
	if err != nil {
		return abandon(err)
	}
	registerChild(w) // OwnChild(pid) until w reaps it
	_ = proc.Release()
	return &Process{id: id, watch: w, leader: true, child: true}, nil
}

// Adopt takes over a process recorded before a daemon restart. It opens a
// pidfd on id.PID, then checks it with [Verify]; errors wrap
// [ErrNoProcess] or [ErrNotSameProcess] as Verify's do, and nothing is
// adopted then. The process is not our child, so its exit will be
// [Exit.Unknown].
func Adopt(id Identity) (*Process, error) {
	fd, st, err := openVerified(id, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("adopt: %w", filesError(err))
	}
	w, err := newWatch(id.PID, fd)
	if err != nil {
		return nil, fmt.Errorf("adopt: %w", err)
	}
	return &Process{id: id, watch: w, leader: st.PGID == id.PID}, nil
}

// Identity returns the recorded identity of the process.
func (p *Process) Identity() Identity { return p.id }

// PID returns the process id.
func (p *Process) PID() int { return p.id.PID }

// Watch returns the process's exit watch.
func (p *Process) Watch() *Watch { return p.watch }

// Adopted reports whether the process came from [Adopt] rather than [Start].
func (p *Process) Adopted() bool { return !p.child }

// GroupLeader reports whether the process leads its own process group, so
// that [Process.SignalGroup] and the sweep of [Process.Finish] apply. Always
// true for [Start].
func (p *Process) GroupLeader() bool { return p.leader }

// Wait blocks until the process exits (see [Watch.Wait]); it does not reap.
func (p *Process) Wait(ctx context.Context) (Exit, error) { return p.watch.Wait(ctx) }

// Signal sends sig to the process only, through its pidfd. An error wraps
// [ErrNoProcess] once the process has been reaped.
func (p *Process) Signal(sig syscall.Signal) error {
	return p.watch.withPidfd(func(fd int) error { return sendSignal(fd, p.id, sig, false) })
}

// SignalGroup sends sig to the process group the process leads, through its
// pidfd, which also reaches the group's remaining members after the leader
// is gone. An error wraps [ErrNotGroupLeader] if the process does not lead a
// group, and [ErrNoProcess] if the group is empty.
func (p *Process) SignalGroup(sig syscall.Signal) error {
	if !p.leader {
		return &ProcessError{Op: "signal group", PID: p.id.PID, Err: ErrNotGroupLeader}
	}
	return p.watch.withPidfd(func(fd int) error { return sendSignal(fd, p.id, sig, true) })
}

// Finish completes a process whose leader has exited: it SIGKILLs whatever
// is left in its process group (grandchildren), then reaps the leader, and
// returns its [Exit]. If the leader has not exited, Finish signals nothing
// and returns an error wrapping [ErrNotExited]. It is idempotent.
//
// This is the one end-of-life path: [Stop] ends with it too.
func (p *Process) Finish() (Exit, error) {
	_, exited, err := p.watch.Exited()
	if err != nil {
		return Exit{}, err
	}
	if !exited {
		return Exit{}, &ProcessError{Op: "finish", PID: p.id.PID, Err: ErrNotExited}
	}
	if p.leader {
		err := p.SignalGroup(syscall.SIGKILL)
		if err != nil && !isGoneErr(err) {
			return Exit{}, err
		}
	}
	var oom bool
	if p.cg != nil {
		// What escaped the group (setsid, a double fork) is still in the
		// cgroup: it ends with the service.
		ctx, cancel := context.WithTimeout(context.Background(), KillWait)
		err := p.cg.Kill(ctx)
		cancel()
		if err != nil {
			return Exit{}, err
		}
		n, err := p.cg.OOMKills()
		if err != nil {
			return Exit{}, err
		}
		oom = n > p.oomBase
	}
	exit, err := p.watch.Reap()
	if err == nil && oom {
		exit.OOM = true
	}
	return exit, err
}

// Contain makes g the cgroup of a process re-adopted after a daemon
// restart, before it is shared: its escaped children are still in g, and
// [Process.Finish] (so [Stop]) kills them with it. A nil g changes
// nothing. Calling it on a process made by [Start], or after the process
// is shared, is a mistake.
func (p *Process) Contain(g *cgroup.Group) error {
	if g == nil {
		return nil
	}
	n, err := g.OOMKills()
	if err != nil {
		return err
	}
	p.cg, p.oomBase = g, n
	return nil
}

// Close releases the pidfd. It does not reap; see [Watch.Close].
func (p *Process) Close() error { return p.watch.Close() }

// isGoneErr reports whether a signalling error means the target is already
// gone: nothing left to signal.
func isGoneErr(err error) bool {
	return errors.Is(err, ErrNoProcess) || errors.Is(err, ErrNotSameProcess)
}
