package solo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/probe"
	"github.com/solo-rt/solo/supervisor"
)

// notifyPath is the NOTIFY_SOCKET of a service: one unixgram socket per
// service under the data dir, named by a hash of its key so that the path
// stays short (a unix socket path holds at most 107 bytes).
func (r *Runtime) notifyPath(key state.Key) string {
	sum := sha256.Sum256([]byte(key.Tenant + "/" + key.Name))
	return filepath.Join(r.home, "notify", hex.EncodeToString(sum[:8]))
}

// readiness sets up a command spec's readiness probe on its loop: the probe
// runs from each start until it passes or the spec's deadline, on a timer
// (probe.Until); a notify service gets NOTIFY_SOCKET in its environment
// (and WATCHDOG_USEC with a watchdog). For a notify service it returns
// how to find an instance's socket, for its watchdog.
func (r *Runtime) readiness(cfg *supervisor.ServiceConfig, runner *supervisor.ProcessRunner, spec state.Spec, prepare preparer) notifierFunc {
	rs := spec.Ready
	cfg.ReadyTimeout = rs.Deadline()
	if p := r.probeOf(spec, runner, prepare, rs.HTTP, rs.TCP, rs.Exec); p != nil {
		cfg.Ready = func(ctx context.Context, _ supervisor.Instance) error { return probe.Until(ctx, probe.Interval, p) }
		return nil
	}
	if !rs.Notify {
		return nil
	}
	key := spec.Key()
	path := r.notifyPath(key)
	var pgid atomic.Int64 // the instance's, once started
	refused := func(err error) { r.log.Warn("notify message refused", "service", key.String(), "error", err) }
	listen := func() (*probe.Notify, error) {
		if err := os.MkdirAll(filepath.Dir(path), modeNotify); err != nil {
			return nil, err
		}
		return probe.Listen(path, func(pid int) error { return inGroup(pid, int(pgid.Load())) }, refused)
	}
	inner := runner.Prepare
	runner.Prepare = func(o *supervisor.StartOptions) error {
		if inner != nil {
			if err := inner(o); err != nil {
				return err
			}
		}
		// The socket exists before the child does, so no READY=1 is
		// lost; each attempt gets a fresh one.
		if old, ok := r.notifiers.LoadAndDelete(key); ok {
			old.(*probe.Notify).Close() // an earlier attempt's or generation's
		}
		pgid.Store(0)
		n, err := listen()
		if err != nil {
			return err
		}
		r.notifiers.Store(key, n)
		o.Env = append(o.Env, "NOTIFY_SOCKET="+path)
		if h := spec.Health; h != nil && h.Watchdog != 0 {
			o.Env = append(o.Env, probe.WatchdogEnv(h.Watchdog.Std()))
		}
		return nil
	}
	// notifier is the attempt's socket. A re-adopted instance, started by
	// an earlier daemon, has none yet: its NOTIFY_SOCKET is the same path;
	// listen there again.
	notifier := func(inst supervisor.Instance) (*probe.Notify, error) {
		pgid.Store(int64(inst.Identity().PID))
		if v, ok := r.notifiers.Load(key); ok {
			return v.(*probe.Notify), nil
		}
		n, err := listen()
		if err != nil {
			return nil, err
		}
		v, _ := r.notifiers.LoadOrStore(key, n)
		return v.(*probe.Notify), nil
	}
	cfg.Ready = func(ctx context.Context, inst supervisor.Instance) error {
		n, err := notifier(inst)
		if err != nil {
			return err
		}
		return probe.Until(ctx, probe.Interval, n.Ready)
	}
	return notifier
}

// notifierFunc finds the notify socket of a notify service's instance.
type notifierFunc func(supervisor.Instance) (*probe.Notify, error)

// probeOf is the http, tcp or exec probe of a readiness or health check of
// spec; nil if it sets none. An exec probe runs as the service does (see
// execProbe).
func (r *Runtime) probeOf(spec state.Spec, runner *supervisor.ProcessRunner, prepare preparer, http, tcp string, exec []string) probe.Func {
	switch {
	case http != "":
		return probe.HTTP(http)
	case tcp != "":
		return probe.TCP(tcp)
	case exec != nil:
		return r.execProbe(spec, runner, prepare, exec)
	}
	return nil
}

// execProbe is an exec probe of a command spec: argv runs as the service
// does, from the one reading of its who and where (resolveLaunch: its user
// and groups, env files, secrets, umask; its dir), in the service's
// cgroup, as a short-lived child that is killed with its whole process
// group at the probe's timeout (supervisor.Run). It gets no marker: it is
// never taken for the service.
func (r *Runtime) execProbe(spec state.Spec, runner *supervisor.ProcessRunner, prepare preparer, argv []string) probe.Func {
	key := spec.Key()
	return func(ctx context.Context) error {
		o := supervisor.StartOptions{Argv: argv, Env: runner.Env, Dir: spec.Dir}
		if prepare != nil {
			if err := prepare(&o); err != nil {
				return err
			}
		}
		if r.cg.Available() {
			g, err := r.cg.Load(key.Tenant, key.Name)
			if err != nil {
				return fmt.Errorf("the service's cgroup: %w", err)
			}
			o.Cgroup = g
		}
		exit, err := supervisor.Run(ctx, o)
		switch {
		case err != nil && ctx.Err() != nil:
			return errors.New("probe command timed out and was killed")
		case err != nil:
			return err
		case !exit.Success():
			return fmt.Errorf("`%s`: %s", state.QuoteCommand(argv), exit)
		}
		return nil
	}
}

// health sets up a command spec's health check on its loop (see
// supervisor.ServiceConfig.Health): its probe on the runtime's checker,
// every interval from the instance's readiness; the watchdog of a notify
// service on its notify socket (found by notifier).
func (r *Runtime) health(cfg *supervisor.ServiceConfig, runner *supervisor.ProcessRunner, spec state.Spec, notifier notifierFunc, prepare preparer) {
	h, key := spec.Health, spec.Key()
	p := r.probeOf(spec, runner, prepare, h.HTTP, h.TCP, h.Exec)
	interval, timeout, retries := h.Every()
	check := probe.Check{Interval: interval, Timeout: timeout, Retries: retries}
	cfg.Health = func(inst supervisor.Instance, report func(bool, error)) func() {
		var stops []func()
		if p != nil {
			stops = append(stops, r.checker.Watch(p, check, report))
		}
		if h.Watchdog != 0 && notifier != nil {
			n, err := notifier(inst)
			if err != nil {
				r.log.Warn("cannot arm the watchdog", "service", key.String(), "error", err)
			} else {
				stops = append(stops, n.Watchdog(h.Watchdog.Std(), report))
			}
		}
		return func() {
			for _, stop := range stops {
				stop()
			}
		}
	}
}

// ProbeFailures returns how many health probe tries failed since Open, of
// every service.
func (r *Runtime) ProbeFailures() uint64 { return r.checker.Failures() }

// inGroup refuses a MAINPID= that is not a live process of the service's
// process group (the group its leader pgid made).
func inGroup(pid, pgid int) error {
	g, err := syscall.Getpgid(pid)
	if err != nil {
		return fmt.Errorf("no process %d", pid)
	}
	if g != pgid {
		return fmt.Errorf("process %d is not in the service's process group %d", pid, pgid)
	}
	return nil
}

// notifyStatus is the latest STATUS= a notify service sent; empty if none.
func (r *Runtime) notifyStatus(key state.Key) string {
	v, ok := r.notifiers.Load(key)
	if !ok {
		return ""
	}
	s, _ := v.(*probe.Notify).Status()
	return s
}

// closeNotifiers closes every notify socket (at Close).
func (r *Runtime) closeNotifiers() {
	r.notifiers.Range(func(k, v any) bool {
		v.(*probe.Notify).Close()
		r.notifiers.Delete(k)
		return true
	})
}
