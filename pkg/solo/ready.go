package solo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
// (probe.Until); a notify service gets NOTIFY_SOCKET in its environment.
func (r *Runtime) readiness(cfg *supervisor.ServiceConfig, runner *supervisor.ProcessRunner, spec state.Spec) error {
	rs := spec.Ready
	cfg.ReadyTimeout = rs.Deadline()
	switch {
	case rs.HTTP != "":
		p := probe.HTTP(rs.HTTP)
		cfg.Ready = func(ctx context.Context, _ supervisor.Instance) error { return probe.Until(ctx, probe.Interval, p) }
	case rs.TCP != "":
		p := probe.TCP(rs.TCP)
		cfg.Ready = func(ctx context.Context, _ supervisor.Instance) error { return probe.Until(ctx, probe.Interval, p) }
	case rs.Exec != nil:
		p := probe.Exec(rs.Exec, childEnv(spec.Env), spec.Dir)
		cfg.Ready = func(ctx context.Context, _ supervisor.Instance) error { return probe.Until(ctx, probe.Interval, p) }
	case rs.Notify:
		key := spec.Key()
		path := r.notifyPath(key)
		var pgid atomic.Int64 // the instance's, once started
		refused := func(err error) { r.log.Warn("notify message refused", "service", key.String(), "error", err) }
		prepare := runner.Prepare
		runner.Prepare = func(o *supervisor.StartOptions) error {
			if prepare != nil {
				if err := prepare(o); err != nil {
					return err
				}
			}
			// The socket exists before the child does, so no READY=1 is
			// lost; each attempt gets a fresh one.
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			if old, ok := r.notifiers.LoadAndDelete(key); ok {
				old.(*probe.Notify).Close() // an earlier attempt's or generation's
			}
			pgid.Store(0)
			n, err := probe.Listen(path, func(pid int) error { return inGroup(pid, int(pgid.Load())) }, refused)
			if err != nil {
				return err
			}
			r.notifiers.Store(key, n)
			o.Env = append(o.Env, "NOTIFY_SOCKET="+path)
			return nil
		}
		cfg.Ready = func(ctx context.Context, inst supervisor.Instance) error {
			pgid.Store(int64(inst.Identity().PID))
			v, ok := r.notifiers.Load(key)
			if !ok {
				// A re-adopted instance, started by an earlier daemon: its
				// NOTIFY_SOCKET is the same path; listen there again.
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					return err
				}
				n, err := probe.Listen(path, func(pid int) error { return inGroup(pid, int(pgid.Load())) }, refused)
				if err != nil {
					return err
				}
				v, _ = r.notifiers.LoadOrStore(key, n)
			}
			return probe.Until(ctx, probe.Interval, v.(*probe.Notify).Ready)
		}
	}
	return nil
}

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
