package solo

import (
	"context"
	"errors"
	"fmt"
	"github.com/solo-rt/solo/cgroup"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/probe"
	"github.com/solo-rt/solo/recovery"
	"github.com/solo-rt/solo/supervisor"
)

// Runtime is an open Solo: the event log, the world folded from it, and the
// supervisor tree that makes the world run. See the package doc.
type Runtime struct {
	// notifiers holds the notify socket of each notify service's latest
	// attempt (*probe.Notify by state.Key).
	notifiers sync.Map
	// checker runs every service's health probes (ready.go).
	checker *probe.Checker
	opts    Options
	log     hclog.Logger
	svlog   hclog.Logger // the service loops' logger
	store   eventstore.Log
	own     *eventstore.Store // the log in solo.db, when Options.Log is nil
	local   *bolt.DB          // node-local data: tokens, the vault
	logs    *supervisor.Logs
	tree    *supervisor.Tree
	home    string // absolute data dir, part of every child's marker
	cg      *cgroup.Manager

	// force is cancelled when stops must not wait any longer (the end of a
	// shutdown's grace).
	force       context.Context
	forceCancel context.CancelFunc

	world    *follower
	order    *order  // dependency order: parked starts, dependents (order.go)
	faults   *faults // can the log be written? (storefault.go)
	keys     keyedMutex
	quotas   keyedMutex  // a tenant's lock of one quota, by Key{Tenant, quota name} (quota.go)
	draining atomic.Bool // a shutdown began: writes are refused
	closed   atomic.Bool

	recovered recovery.Report  // what the start-up pass did
	reconcile *reconciler      // in a cluster: runs what is placed here (placement.go)
	sessions  *session.Manager // kernel sessions, started after recovery (sessions.go)
	secrets   *Secrets         // the vault (secrets.go)
	allocMu   sync.Mutex       // serialises dynamic user allocations (runas.go)
	tokens    *Tokens          // capability tokens, restored at Open (tokens.go)

	closeOnce sync.Once
	closeErr  error
}

// Open opens the data directory, folds the log into the world (from the
// latest snapshot, then the tail), records system_started, and runs the
// recovery pass (see package recovery): every service the log says should
// run is re-adopted when its recorded process is alive and provably the same
// one, or started anew; marked processes that must not run are stopped; then
// a verify pass fixes any drift left. It returns once every such service has
// been handed to the supervisor.
func Open(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.DataDir == "" {
		return nil, errors.New("open solo: Options.DataDir is required")
	}
	if err := checkQuotas(opts.Quotas); err != nil {
		return nil, err
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
	if err := tightenDataDir(home, opts.Logger); err != nil {
		opts.Logger.Warn("cannot read the whole data dir to tighten its permissions", "data_dir", home, "error", err)
	}
	store, own, local, fl, err := openLog(home, opts)
	if err != nil {
		return nil, fmt.Errorf("open solo: %w", err)
	}
	closeLog := func() {
		if own != nil {
			own.Close()
		} else {
			local.Close()
		}
	}
	world, err := loadWorld(store, opts.Logger)
	if err != nil {
		closeLog()
		return nil, fmt.Errorf("open solo: %w", err)
	}
	logs, err := supervisor.NewLogs(filepath.Join(home, "logs"), opts.Logs)
	if err != nil {
		closeLog()
		return nil, fmt.Errorf("open solo: %w", err)
	}
	r := &Runtime{
		opts:  opts,
		log:   opts.Logger,
		store: store,
		own:   own,
		local: local,
		logs:  logs,
		tree:  supervisor.NewTree(opts.Logger.Named("supervisor")),
		// One logger for every service loop: a Named per service would
		// cost each one its own copy for its whole life.
		svlog: opts.Logger.Named("service"),
		home:  home,

		faults:  fl,
		checker: probe.NewChecker(0),
	}
	r.cg = opts.Cgroups
	if r.cg == nil {
		r.cg = cgroup.Open(home)
	}
	if !r.cg.Available() {
		opts.Logger.Warn("services are contained by process group only, and specs with limits are refused: no cgroups", "reason", r.cg.Reason())
	}
	r.force, r.forceCancel = context.WithCancel(context.Background())
	r.world = newFollower(store, world, opts.SnapshotEvery, opts.Logger)
	r.order = newOrder()
	r.world.watch(r.order.observe)
	go r.runOrder(r.force)
	if err := r.openTokens(ctx); err != nil {
		r.abort()
		return nil, fmt.Errorf("open solo: %w", err)
	}
	if err := r.openVault(); err != nil {
		r.abort()
		return nil, fmt.Errorf("open solo: %w", err)
	}

	boot, _ := supervisor.BootID()
	if err := r.record(ctx, state.Key{}, state.SystemStarted{Version: opts.Version, PID: os.Getpid(), BootID: boot}); err != nil {
		r.abort()
		return nil, fmt.Errorf("open solo: %w", err)
	}
	// Recovery runs before anyone can write: re-adopt or restart what the
	// log says should run, stop strays, then check the result.
	rp := recovery.NewReplayer(recoveryTarget{r}, recovery.Options{Logger: opts.Logger.Named("recovery"), Deadline: opts.RecoveryDeadline})
	if err := r.tree.RunOnce(ctx, rp); err != nil {
		r.abort()
		return nil, fmt.Errorf("open solo: recovery: %w", err)
	}
	rep, err := rp.Result()
	if err != nil {
		r.abort()
		return nil, fmt.Errorf("open solo: recovery: %w", err)
	}
	r.recovered = rep
	soft, hard := supervisor.FileLimit()
	if err := fileRoom(soft, hard, rep.Readopted+rep.Restarted); err != nil {
		opts.Logger.Warn("few open files left for more services", "error", err)
	}
	if v, err := rp.Verify(ctx, recoveryTarget{r}, true); err != nil {
		opts.Logger.Warn("verify after recovery failed", "error", err)
	} else if !v.Clean {
		opts.Logger.Warn("verify after recovery found drift and fixed it", "findings", len(v.Findings))
	}
	if err := r.openSessions(ctx); err != nil {
		r.abort()
		return nil, fmt.Errorf("open solo: %w", err)
	}
	if r.clustered() {
		r.startReconciler()
	}
	return r, nil
}

// openLog opens the event log and the node-local database. Without
// Options.Log, both are solo.db: the bbolt event store, whose file also
// holds the tokens and the vault, and whose every commit tells whether the
// log can be written. With it, the log is the caller's, and node.db, a
// plain bbolt file, holds what stays on this machine.
func openLog(home string, opts Options) (eventstore.Log, *eventstore.Store, *bolt.DB, *faults, error) {
	if opts.Log != nil {
		path := filepath.Join(home, "node.db")
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("open %s: %w (is another daemon using this data dir?)", path, err)
		}
		return opts.Log, nil, db, newFaults(opts.Logger, "the cluster's event log"), nil
	}
	// Every commit, whoever asked for it, tells whether the log can be
	// written (storefault.go).
	path := filepath.Join(home, "solo.db")
	if err := logNotLost(home, path); err != nil {
		return nil, nil, nil, nil, err
	}
	fl := newFaults(opts.Logger, path)
	var storeOpts eventstore.Options
	if opts.Store != nil {
		storeOpts = *opts.Store
	}
	storeOpts.OnCommit = fl.observer(storeOpts.OnCommit)
	store, err := eventstore.Open(path, &storeOpts)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return store, store, store.DB(), fl, nil
}

// closeLog closes what openLog opened: an external log stays its owner's.
func (r *Runtime) closeLog() error {
	if r.own != nil {
		return r.own.Close() // it closes the database it holds too
	}
	return r.local.Close()
}

// logNotLost refuses to start a new log in a data dir whose services still
// run: with no solo.db, every one of them would be a stray, and stopped.
// Losing the log must never cost the services (I10).
func logNotLost(home, path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	live, err := recovery.Scan(home)
	if err != nil || len(live) == 0 {
		return nil // nothing to lose; a scan that fails changes nothing here
	}
	pids := make([]string, 0, min(len(live), 10))
	for _, o := range live[:min(len(live), 10)] {
		pids = append(pids, strconv.Itoa(o.Identity.PID))
	}
	more := ""
	if len(live) > len(pids) {
		more = fmt.Sprintf(" and %d more", len(live)-len(pids))
	}
	return fmt.Errorf("%w: %s does not exist, but %d processes started from this data dir still run (pids %s%s): restore solo.db from a backup, or stop those processes, then start again",
		ErrLogMissing, path, len(live), strings.Join(pids, ", "), more)
}

// loadWorld folds the latest snapshot and the tail of the log. A snapshot
// that does not decode (say, from another version) is ignored: the log is
// the truth, the snapshot only a shortcut.
func loadWorld(store eventstore.Log, log hclog.Logger) (*state.World, error) {
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

// supervise hands svc to a new loop. With inst set, the loop carries on
// with that running instance (started as attempt at startedAt); without, it
// starts the first attempt itself.
//
// A start (inst nil) of a service that is after others waits, parked,
// until they are ready: see [Runtime.gate].
func (r *Runtime) supervise(svc *state.Service, inst supervisor.Instance, attempt int, startedAt time.Time) error {
	if inst == nil {
		if parked, err := r.gate(context.Background(), svc, attempt); err != nil || parked {
			return err
		}
	}
	cfg, err := r.serviceConfig(svc)
	if err != nil {
		return err
	}
	if inst != nil && svc.IsReady() {
		cfg.Ready = nil // its readiness is recorded: nothing to probe
	}
	if pr, ok := cfg.Runner.(*supervisor.ProcessRunner); ok && inst != nil {
		// A re-adopted process writes on to its log: rotate it as ours.
		if err := pr.WatchLog(); err != nil {
			r.log.Warn("cannot watch a re-adopted service's log; it is not rotated until its next start", "service", svc.Spec.Key().String(), "error", err)
		}
		// Its escaped children are in its cgroup: they end with it. The
		// cgroup is found, not made again: its start made it, with the
		// limits of this generation (at 10,000 services, making them all
		// again was a tenth of a cold start); with none, nothing of it
		// can be in one.
		g, err := r.madeCgroup(svc.Spec)
		if err == nil {
			err = supervisor.Contain(inst, g)
		}
		if err != nil {
			r.log.Warn("cannot read a re-adopted service's cgroup; its escaped children may outlive it", "service", svc.Spec.Key().String(), "error", err)
		}
	}
	cfg.Adopted, cfg.AdoptedAttempt, cfg.AdoptedAt = inst, attempt, startedAt
	return r.tree.Add(supervisor.NewService(cfg))
}

// cgroupLimits are the limits of spec's cgroup.
func cgroupLimits(spec Spec) cgroup.Limits {
	return cgroup.Limits{MemoryMax: int64(spec.MemoryMax), CPU: spec.CPU, PIDsMax: spec.PIDsMax}
}

// serviceConfig builds the loop configuration of one deployed service.
func (r *Runtime) serviceConfig(svc *state.Service) (supervisor.ServiceConfig, error) {
	spec, gen := svc.Spec, svc.Generation
	key := spec.Key()
	logKey := key.Tenant + "/" + key.Name
	cfg := supervisor.ServiceConfig{
		Key: loopKey(key), Generation: gen, Policy: servicePolicy(spec),
		Recorder: r.recordFact(svc.Fence), Backoff: r.opts.Backoff,
		Force: r.loopForce(), Now: r.opts.Now, Logger: r.svlog,
	}
	if spec.Kind != "" {
		f, err := r.kind(spec.Kind)
		if err != nil {
			return cfg, err
		}
		cfg.Runner = &supervisor.FuncRunner{
			New:    func(log io.Writer) (GoService, error) { return f(spec.Config, log) },
			Logs:   r.logs,
			LogKey: logKey,
		}
		return cfg, nil
	}
	// Who it runs as, read at every start (and by its exec probes).
	prepare := r.prepareLaunch(spec, isConfined(key.Tenant, svc.DeployedBy))
	runner := &supervisor.ProcessRunner{
		Argv: spec.Command, Env: append(childEnv(spec.Env), fenceEnv(r.opts.Node, svc.Fence)...), Dir: spec.Dir,
		Prepare: prepare,
		Logs:    r.logs, LogKey: logKey,
		Marker: supervisor.Marker{Home: r.home, Tenant: key.Tenant, Name: key.Name, Generation: gen},
	}
	if spec.Log != nil {
		// The spec's own limits; without, the runtime's (Options.Logs).
		maxSize, files := spec.Log.Limits()
		runner.LogLimits = supervisor.LogLimits{MaxSize: int64(maxSize), MaxFiles: files}
	}
	if spec.Log.Stamped() {
		runner.Stamper = r.opts.Stamper
	}
	if r.cg.Available() {
		limits := cgroupLimits(spec)
		runner.Cgroup = func() (*cgroup.Group, error) { return r.cg.Create(key.Tenant, key.Name, limits) }
	}
	cfg.Runner = runner
	var notifier notifierFunc
	if spec.Ready != nil {
		notifier = r.readiness(&cfg, runner, spec, prepare)
	}
	if spec.Health != nil {
		r.health(&cfg, runner, spec, notifier, prepare)
	}
	return cfg, nil
}

// inherited are the variables a child takes from the daemon's environment;
// nothing else is passed, so no secret of the daemon's (SOLO_TOKEN, say)
// leaks into a service.
var inherited = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR"}

// inheritedPairs caches the "K=V" strings of the inherited variables, so
// that 1,000 services share one copy of a long PATH instead of holding one
// each. An entry is used only while the daemon's value is the same.
var inheritedPairs sync.Map // K -> "K=V"

func inheritedPair(k, v string) string {
	if p, ok := inheritedPairs.Load(k); ok {
		if s := p.(string); len(s) == len(k)+1+len(v) && s[len(k)+1:] == v {
			return s
		}
	}
	s := k + "=" + v
	inheritedPairs.Store(k, s)
	return s
}

func childEnv(spec map[string]string) []string {
	env := make([]string, 0, len(inherited)+len(spec))
	for _, k := range inherited {
		if _, override := spec[k]; override {
			continue
		}
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, inheritedPair(k, v))
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
	return r.appendEvent(ctx, ev)
}

// appendEvent appends ev and waits for it to be folded.
//
// A caller whose ctx has ended writes nothing. One that gives up while the
// append is in flight (a client that times out on a loaded machine) must
// not leave its outcome unknown: the event may have been written, and a
// durable intent is carried through (a deploy recorded but not acted on
// would leave the log and the world disagreeing). So the append is
// settled with the same event id, without the caller's ctx: the store
// returns the event's position if it was written, and writes it if not.
func (r *Runtime) appendEvent(ctx context.Context, ev eventstore.Event) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if ev.ID == (ulid.ULID{}) {
		ev.ID = r.store.NewID()
	}
	pos, err := r.store.Append(ctx, ev)
	if err != nil && ctx.Err() != nil {
		pos, err = r.store.Append(context.WithoutCancel(ctx), ev)
	}
	r.observeCommit(err)
	if err != nil {
		return 0, err
	}
	// The event is durable: whatever the caller's context says, its effect
	// must follow, so wait for the fold without it (the fold is quick; it
	// ends early only if the store closes).
	if err := r.world.wait(context.WithoutCancel(ctx), pos[0]); err != nil {
		return pos[0], err
	}
	return pos[0], nil
}

// abort undoes a failed Open.
func (r *Runtime) abort() {
	r.reconcile.close()
	r.forceCancel()
	r.closeSessions()
	r.tree.StopAll(context.Background())
	r.world.close()
	r.tokens.close()
	r.logs.Close()
	r.closeLog()
}

// Store returns the event log, for the daemon's operations (check, backup,
// metrics). Writing to it directly bypasses validation: don't.
func (r *Runtime) Store() eventstore.Log { return r.store }

// DataDir returns the absolute data directory.
func (r *Runtime) DataDir() string { return r.home }

// observeCommit tells the fault tracker how a write to an external log
// went (the bbolt store tells it itself, from every group commit): a
// cluster that does not answer is a fault until a write succeeds again.
func (r *Runtime) observeCommit(err error) {
	if r.own != nil {
		return
	}
	switch {
	case err == nil:
		r.faults.ok()
	case errors.Is(err, eventstore.ErrUnavailable):
		r.faults.failed(err)
	}
}

// fileReserve is the open files a daemon keeps for other things than its
// services: the store, API connections, log followers, probes.
const fileReserve = 1024

// fileRoom says, at start, when the services that run leave less than
// [fileReserve] of the daemon's limit of open files (soft, hard): each
// running service holds [supervisor.FilesPerService], and a start past the
// limit fails (see [supervisor.ErrTooManyFiles]).
func fileRoom(soft, hard uint64, services int) error {
	need := uint64(services*supervisor.FilesPerService + fileReserve)
	if soft == 0 || need <= soft {
		return nil
	}
	return fmt.Errorf("%d services run, each holding %d open file, and the daemon's limit of open files is %d (hard limit %d): raise the hard limit (LimitNOFILE= in its systemd unit, `ulimit -Hn` in the shell that starts it) to at least %d",
		services, supervisor.FilesPerService, soft, hard, need+uint64(services))
}
