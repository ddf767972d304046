package solo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// Runtime is an open Solo: the event log, the world folded from it, and the
// supervisor tree that makes the world run. See the package doc.
type Runtime struct {
	opts  Options
	log   hclog.Logger
	store *eventstore.Store
	logs  *supervisor.Logs
	tree  *supervisor.Tree
	home  string // absolute data dir, part of every child's marker

	// force is cancelled when stops must not wait any longer (the end of a
	// shutdown's grace).
	force       context.Context
	forceCancel context.CancelFunc

	world    *follower
	keys     keyedMutex
	draining atomic.Bool // a shutdown began: writes are refused
	closed   atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

// Open opens the data directory, folds the log into the world (from the
// latest snapshot, then the tail), records system_started, and brings back
// every service the log says should run: a recorded instance that is still
// alive and provably the same process is re-adopted, any other is started
// anew. It returns once every such service has been handed to the
// supervisor.
func Open(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.DataDir == "" {
		return nil, errors.New("open solo: Options.DataDir is required")
	}
	home, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open solo: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Registry == nil {
		opts.Registry = defaultRegistry
	}
	if opts.SnapshotEvery == 0 {
		opts.SnapshotEvery = DefaultSnapshotEvery
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("open solo: %w", err)
	}
	store, err := eventstore.Open(filepath.Join(home, "solo.db"), opts.Store)
	if err != nil {
		return nil, fmt.Errorf("open solo: %w", err)
	}
	world, err := loadWorld(store, opts.Logger)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open solo: %w", err)
	}
	logs, err := supervisor.NewLogs(filepath.Join(home, "logs"), opts.Logs)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open solo: %w", err)
	}
	r := &Runtime{
		opts:  opts,
		log:   opts.Logger,
		store: store,
		logs:  logs,
		tree:  supervisor.NewTree(opts.Logger.Named("supervisor")),
		home:  home,
	}
	r.force, r.forceCancel = context.WithCancel(context.Background())
	r.world = newFollower(store, world, opts.SnapshotEvery, opts.Logger)

	boot, _ := supervisor.BootID()
	if err := r.record(ctx, state.Key{}, state.SystemStarted{Version: opts.Version, PID: os.Getpid(), BootID: boot}); err != nil {
		r.abort()
		return nil, fmt.Errorf("open solo: %w", err)
	}
	if err := r.restore(ctx); err != nil {
		r.abort()
		return nil, fmt.Errorf("open solo: %w", err)
	}
	return r, nil
}

// loadWorld folds the latest snapshot and the tail of the log. A snapshot
// that does not decode (say, from another version) is ignored: the log is
// the truth, the snapshot only a shortcut.
func loadWorld(store *eventstore.Store, log hclog.Logger) (*state.World, error) {
	var snap *state.World
	pos, data, err := store.LoadSnapshot()
	switch {
	case err == nil:
		if snap, err = state.UnmarshalSnapshot(data); err != nil {
			log.Warn("ignoring snapshot that does not decode; folding the whole log", "pos", pos, "error", err)
			snap = nil
		}
	case !errors.Is(err, eventstore.ErrNoSnapshot):
		return nil, err
	}
	from := uint64(1)
	if snap != nil {
		from = snap.Pos() + 1
	}
	return state.Fold(snap, store.Read(from, 0))
}

// restore hands every desired service to the supervisor.
func (r *Runtime) restore(ctx context.Context) error {
	for _, svc := range r.world.desired() {
		switch svc.State() {
		case state.StateExited, state.StateFailed:
			continue // ended for good under its policy, or hit its limit
		}
		if err := r.run(ctx, svc); err != nil {
			r.log.Error("cannot bring service back", "service", svc.Spec.Key(), "error", err)
		}
	}
	return nil
}

// run starts the loop of a desired service, re-adopting its recorded
// instance when that process still runs and is provably the same one.
func (r *Runtime) run(ctx context.Context, svc *state.Service) error {
	cfg, err := r.serviceConfig(svc.Spec, svc.Generation)
	if err != nil {
		return err
	}
	if inst := svc.Instance; inst != nil && !inst.Exited && inst.PID > 0 {
		id := supervisor.Identity{PID: inst.PID, StartTicks: inst.StartTicks, BootID: inst.BootID}
		p, err := supervisor.Adopt(id)
		if err == nil && inst.Generation == svc.Generation {
			cfg.Adopted = supervisor.AdoptedInstance(p)
			cfg.AdoptedAttempt, cfg.AdoptedAt = inst.Attempt, inst.StartedAt
			r.log.Info("re-adopted service", "service", svc.Spec.Key(), "pid", inst.PID)
		} else {
			if err == nil {
				// Alive but of an older generation: the deploy that
				// replaced it was logged, so its stop was intended.
				supervisor.AdoptedInstance(p).Stop(r.force, svc.Spec.Signal(), svc.Spec.StopTimeout.Std())
			}
			// The recorded instance is gone (or was not ours): record
			// that it ended, with an unknown status, before replacing it.
			r.record(ctx, svc.Spec.Key(), state.Exited{Generation: inst.Generation, PID: inst.PID, Attempt: inst.Attempt, Unknown: true})
			cfg.AdoptedAttempt = inst.Attempt + 1
		}
	}
	return r.tree.Add(supervisor.NewService(cfg))
}

// serviceConfig builds the loop configuration of one deployed spec.
func (r *Runtime) serviceConfig(spec state.Spec, gen uint64) (supervisor.ServiceConfig, error) {
	key := spec.Key()
	logKey := key.Tenant + "/" + key.Name
	cfg := supervisor.ServiceConfig{
		Spec: spec, Generation: gen, Recorder: supervisor.RecorderFunc(r.record),
		Backoff: r.opts.Backoff, Force: r.force, Now: r.opts.Now,
		Logger: r.log.Named("service"),
	}
	if spec.Kind != "" {
		f, ok := r.opts.Registry.Lookup(spec.Kind)
		if !ok {
			return cfg, fmt.Errorf("%w: %q (registered: %v)", ErrUnknownKind, spec.Kind, r.opts.Registry.Kinds())
		}
		cfg.Runner = &supervisor.FuncRunner{
			New:    func(log io.Writer) (GoService, error) { return f(spec.Config, log) },
			Logs:   r.logs,
			LogKey: logKey,
		}
		return cfg, nil
	}
	cfg.Runner = &supervisor.ProcessRunner{
		Argv: spec.Command, Env: childEnv(spec.Env), Dir: spec.Dir,
		Logs: r.logs, LogKey: logKey,
		Marker: func(attempt int) string {
			return supervisor.Marker(r.home, key.Tenant, key.Name, gen, attempt)
		},
	}
	return cfg, nil
}

// inherited are the variables a child takes from the daemon's environment;
// nothing else is passed, so no secret of the daemon's (SOLO_TOKEN, say)
// leaks into a service.
var inherited = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR"}

func childEnv(spec map[string]string) []string {
	env := make([]string, 0, len(inherited)+len(spec))
	for _, k := range inherited {
		if _, override := spec[k]; override {
			continue
		}
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for _, k := range sortedKeys(spec) {
		env = append(env, k+"="+spec[k])
	}
	return env
}

// record appends one event about key and returns once it is durable and
// folded into the world, so a caller reads its own writes.
func (r *Runtime) record(ctx context.Context, key state.Key, p state.Payload) error {
	_, err := r.append(ctx, key, p, actorFrom(ctx))
	return err
}

func (r *Runtime) append(ctx context.Context, key state.Key, p state.Payload, actor string) (uint64, error) {
	ev, err := state.NewEvent(key.Tenant, key.Name, p)
	if err != nil {
		return 0, err
	}
	ev.Actor = actor
	pos, err := r.store.Append(ctx, ev)
	if err != nil {
		return 0, err
	}
	if err := r.world.wait(ctx, pos[0]); err != nil {
		return pos[0], err
	}
	return pos[0], nil
}

// abort undoes a failed Open.
func (r *Runtime) abort() {
	r.forceCancel()
	r.tree.StopAll(context.Background())
	r.world.close()
	r.logs.Close()
	r.store.Close()
}

// Store returns the event log, for the daemon's operations (check, backup,
// metrics). Writing to it directly bypasses validation: don't.
func (r *Runtime) Store() *eventstore.Store { return r.store }
