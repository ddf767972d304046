// Package solo is the embeddable Solo runtime: it opens a data directory,
// folds its event log into the world, and runs what the world says should
// run, OS processes and in-process Go services alike.
//
// It owns the write path of DESIGN.md: validate, append the intent
// (fsynced), fold, act, append the observed facts. It must never act before
// the intent is durable, never start a second instance of a (tenant, name),
// and never read state except through the fold of package state.
//
// The supervisor's loops are told a [supervisor.Policy] derived from each
// spec and report [supervisor.Fact]s in their own terms; the runtime
// records each as the domain's event (service_started, service_exited,
// service_failed), retrying it while the log cannot be written.
//
// # Usage
//
//	rt, err := solo.Open(ctx, solo.Options{DataDir: "/var/lib/solo"})
//	if err != nil { ... }
//	defer rt.Close(ctx)
//	res, err := rt.Deploy(ctx, solo.Spec{Name: "web", Command: []string{"./web", "-port", "8080"}})
//	view, err := rt.WaitStarted(ctx, "default", "web", res.Pos) // started, or ErrStartFailed and why
//	views := rt.List("default")
//	err = rt.Kill(ctx, "default", "web")       // stop: down, across restarts too
//	res, err = rt.Start(ctx, "default", "web")  // up again, same spec and generation
//	res, err = rt.Restart(ctx, "default", "web")
//	_, err = rt.Signal(ctx, "default", "web", "HUP")
//	err = rt.Remove(ctx, "default", "web")     // once stopped: the name is free
//
// # Lifecycle verbs
//
// Each verb is one event, recorded with the caller's actor ([WithActor];
// "local" otherwise) before it acts:
//
//   - Kill (the CLI's stop and kill): service_killed; the service stays down
//     across daemon restarts, its spec kept.
//   - Start: service_start_requested; desired again with the last spec. It
//     keeps the generation (nothing about what runs changed, and the
//     attempts of the generation keep counting, so a marker still tells an
//     old instance from the new one after a crash).
//   - Restart: service_restart_requested; the instance is stopped with the
//     one stop procedure, then a new attempt starts. A requested restart
//     counts neither toward the restart limit nor in [ServiceView].Restarts,
//     which counts only restarts after the service's own exits (as
//     systemd's NRestarts does; pm2 and docker count requested ones too).
//     A clean daemon stop and start is not a restart either.
//   - Signal: service_signalled, after the identity check, to the process
//     group.
//   - Remove: service_removed, only for a stopped service; the name is free
//     and a later deploy starts again at generation 1 (the service's
//     history stays in the log; its log files stay on disk).
//
// [Runtime.WaitStarted] tells whether the attempt a Deploy, Start or
// Restart asked for started: started means exec succeeded (for an
// in-process service, its factory returned), as systemd's Type=exec has it;
// an attempt that could not start reports why ([ErrStartFailed]), and that
// reason is also in the view, the events and the service's log file.
//
// # Dependency order
//
// A spec's After and Requires name services of its tenant. [Runtime.Deploy]
// and [Runtime.Apply] refuse, before anything is written, a name that is
// not a service of the tenant (for an apply: after it), the service itself
// and a cycle, naming it ([state.CheckOrder]). Every start (deploy, apply,
// start, restart, recovery after a crash, recover) waits until the services
// it is after are ready ([state.World.Blockers], the one rule): the start is
// parked, service_waiting is recorded, and it begins once their
// service_ready (or, without a probe, service_started) is folded. A parked
// start costs no goroutine. When a required service stops, fails, or
// exits, its running dependents are stopped with their stop procedure,
// service_waiting recording the reason ("required service db stopped")
// first, and start again once it is ready; a dependent is stopped once per
// such down, not once per event. Remove refuses a service others depend on
// ([ErrHasDependents]); a prune kills it, which stops what requires it.
// [Runtime.WaitStarted] returns for a start that waits, without waiting for
// the dependencies. The drain stops dependents before what they depend on.
//
// In-process services register a kind with [Register] (or a [Registry] in
// [Options]) and are deployed with Spec.Kind and Spec.Config.
//
// # Tenants and who their services run as
//
// The local admin's services of the default tenant run as the daemon's
// user, or as the user their spec names. Every other service (any of a
// tenant other than "default", and any a token deployed, a token being
// confined to its tenant) is confined: it runs as a user its tenant's
// policy allows ([Runtime.SetTenantPolicy]): the spec's user, which must
// be in the policy, else the policy's first user, else the tenant's
// dynamic user, an unprivileged uid and gid of 61184-65519 allocated as
// systemd's DynamicUser does (hashed from the tenant's name, skipping
// numbers in passwd, group or another tenant's use), recorded once as
// tenant_user_allocated so it is the same after a restart. A group the
// spec names must be in the policy or the user's own. Never root, never
// the daemon's own user; a daemon not running as root refuses confined
// services. A refusal is [ErrDenied] (the API's 403) naming the user or
// group, and nothing is written; the same rule runs at every start, so a
// policy change applies at the next one. Kernel sessions follow it: their
// kernel is such a service (see package session for its files).
//
// The data dir is the daemon's: mode 0711 (a service passes through to its
// notify socket, and lists nothing), solo.db, the vault key and every log
// file 0600 in 0700 directories; an older data dir is tightened at Open,
// logged once. A service writes its log through the descriptor it is
// given (or the stamper's pipe), never by path, and reads it with
// `solo logs`, served by the daemon.
//
// # Guarantees
//
//   - Deploy, Kill and the other verbs return only after their event is
//     fsynced (I1), and
//     act only after that (I2). Invalid input returns an error naming the
//     field and writes nothing (I9).
//   - One loop, so one instance, per (tenant, name): a redeploy stops the old
//     instance before it starts the new generation.
//   - A read after a write sees the write: every event a method appends is
//     folded into the world before the method returns.
//   - Close (or Shutdown) drains in order and is not a kill: the next Open
//     brings the services back, re-adopting those still alive (I5).
//
// # Quotas
//
// [Options.Quotas] bound what each tenant holds: its services, its live
// kernel sessions, their queued tasks (0: no limit, the default). A write
// that would go over (a deploy or apply of new services, a session's
// creation, a task's submission) is refused with a [*state.QuotaError]
// before anything is written; an apply is refused whole. The check takes
// the tenant's lock of that quota and holds it until the write is folded,
// so two writes cannot both take the last place. The writes of a context
// marked [AsOperator] (the API marks the local admin's) are never refused:
// the operator is trusted, tenants are limited.
//
// # Cluster mode
//
// With [Options.Log] (the cluster's etcd log) and [Options.Node], the
// runtime is one node of a cluster (package cluster wires it). Every node
// folds the one log, so any node answers reads for the whole cluster and
// writes go through the log. The verbs (deploy, start, restart, apply)
// only write: a service runs where service_placed puts it, and each node's
// reconciler starts or stops its loops by [Runtime.runsHere], the one rule
// (should run, placed here under this node's current lease, not fenced).
// A spec's nodes (state.Spec.Nodes) are for a cluster: a runtime without
// [Options.Node] refuses them at deploy and apply, writing nothing.
// A child gets SOLO_NODE and SOLO_FENCE (its placement's fencing token);
// its start and exit are recorded with the fence, and the fold ignores a
// start under an older one. A fenced node drops the facts it cannot
// record rather than hold up its stops. Recovery sees only what runs
// here, so any other marked process of the data dir is stopped as a
// stray. Tokens are in etcd too when [Options.Tokens] opens them there
// (the solo daemon does), valid on every node; the vault stays on each
// node (node.db): a secret set through one node is not on the others.
//
// # Concurrency
//
// A [Runtime] is safe for concurrent use. Deploys and kills of the same
// service are serialised; those of different services run in parallel,
// except the check and append of new services of one tenant under a quota
// (see "Quotas"), which are serialised per tenant, never across tenants.
//
// One follower goroutine is the only subscriber that folds the log: it
// applies each envelope to the world (services and kernel sessions), then
// calls the session manager's watcher with it (which starts and wakes
// session workers, and must not block), and only then lets a wait for that
// position return. Every read of state, the session manager's included,
// is a short copy under the world's lock.
//
// # Caveats
//
//   - A process is marked with SOLO_SERVICE (see [supervisor.MarkerEnv]) and
//     gets only a few variables of the daemon's environment (PATH, HOME,
//     USER, LOGNAME, LANG, LC_ALL, TZ, TMPDIR) plus its spec's env.
//   - An in-process service that ignores its context cannot be killed: on
//     stop it is abandoned after its stop timeout and reported as forced.
package solo
