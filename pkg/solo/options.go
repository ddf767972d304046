package solo

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/cgroup"
	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// Defaults for [Options].
const (
	// DefaultSnapshotEvery is how many events are folded between two
	// snapshots of the world, so that a start reads a bounded tail.
	DefaultSnapshotEvery = 10_000
)

// Options configure [Open]. Only DataDir is required; every zero field
// means its documented default.
type Options struct {
	// DataDir holds solo.db and logs/. It is created (mode 0700) if missing.
	DataDir string
	// Logger receives the runtime's own logs. Default: a null logger.
	Logger hclog.Logger
	// Registry resolves the kinds of in-process services. Default: the
	// registry filled by [Register].
	Registry *Registry
	// Backoff spaces restarts; see [supervisor.Backoff] for its defaults.
	Backoff supervisor.Backoff
	// Logs bounds each service's log files; see [supervisor.LogOptions].
	// A spec's own log settings (state.LogSpec) override them.
	Logs supervisor.LogOptions
	// Stamper is the argv of the log stamper a service whose spec asks
	// for timestamps is given (see [supervisor.ProcessRunner.Stamper]):
	// the solo daemon sets it to its own binary and `_logger`. Nil means
	// none, and such a spec is refused at deploy (field log.timestamps):
	// a program embedding the runtime sets it to a binary that runs
	// [supervisor.Stamp] on its stdin and stdout.
	Stamper []string
	// Cgroups makes the services' cgroups (see package cgroup). Nil means
	// cgroup.Open(DataDir): each OS-process service in its own cgroup
	// under the installation's, where the host allows it; where it does
	// not, the runtime logs one warning at Open, contains services by
	// process group only, and refuses a spec with limits (memory_max,
	// cpu, pids_max). cgroup.Disabled turns containment off. A service's
	// cgroup is removed when the service is stopped or removed; a drain
	// leaves the (empty) cgroups of the services that come back at the next
	// start, and [cgroup.Manager.Prune] removes them.
	Cgroups *cgroup.Manager
	// Store configures the event store in solo.db; nil means its defaults.
	// Unused with Log.
	Store *eventstore.Options
	// Log, if set, is the event log the runtime folds, writes and recovers
	// from instead of solo.db: an etcd log (package eventstore/etcdstore)
	// shared by the nodes of a cluster. It stays the caller's: the runtime
	// never closes it. What belongs to this machine alone, the tokens and
	// the vault, is then kept in node.db, a bbolt file in DataDir; appends
	// that fail with eventstore.ErrUnavailable (no quorum) open a store
	// fault (see [Runtime.StoreFault]) until one succeeds.
	Log eventstore.Log
	// Node makes the runtime a node of a cluster (with Log, the cluster's
	// log): it runs only the services placed on it (see [Node] and
	// service_placed), each child told its placement's fence (SOLO_FENCE),
	// every fact recorded with it; the verbs write, and each node's
	// reconciler starts and stops what the log places on it. Nil: one
	// machine, which runs every service that should run.
	Node Node
	// Tokens, if set, opens the token store given the options the runtime
	// would use, instead of the one in the node's own database: in a
	// cluster, capability.OpenEtcd on the cluster's etcd, so that a token
	// granted through any node works on every node, and a revocation
	// reaches them all. The runtime closes it.
	Tokens func(ctx context.Context, o capability.Options) (capability.Tokens, error)
	// SnapshotEvery is the number of events between snapshots. Default
	// DefaultSnapshotEvery.
	SnapshotEvery uint64
	// RecoveryDeadline bounds the recovery pass at Open. Default
	// recovery.DefaultDeadline.
	RecoveryDeadline time.Duration
	// Version is recorded in system_started. Default "dev".
	Version string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Python is the interpreter kernel sessions run ipykernel with, unless
	// a session names its own. Default session.DefaultPython
	// (/usr/bin/python3).
	Python string
	// MaxTokenTTL is the longest ttl a token grant may ask for (see
	// [Runtime.Tokens]). Default capability.DefaultMaxTTL; a grant without
	// a ttl gets capability.DefaultTTL, or MaxTokenTTL if that is shorter.
	MaxTokenTTL time.Duration
	// ReleaseMemoryAfterApply, when set, makes a large Apply (64 events
	// or more) return its burst's memory to the OS once its services have
	// started: two forced collections and debug.FreeOSMemory. Off by
	// default: a library does not force collections behind its host
	// program's back. The solo daemon, which owns its process, turns it
	// on: after starting 1,000 services it would otherwise sit on several
	// MiB of the burst's freed pages for minutes.
	ReleaseMemoryAfterApply bool
	// TokenSweepInterval is how often expired tokens are deleted. Default
	// capability.DefaultSweepInterval. Expired tokens are refused at once
	// whatever it is.
	TokenSweepInterval time.Duration
	// VaultKeyFile is the vault's key file (see [Runtime.Secrets] and
	// package vault): 32 bytes, mode 0600. Default vault.key in DataDir,
	// made on first use. A key file with other permissions or another
	// length fails Open.
	VaultKeyFile string
	// Quotas are the operator's limits of what each tenant may hold at
	// once: services, live kernel sessions, queued tasks (see
	// [Runtime.Limits] and quota.go). Zero fields mean no limit, the
	// default; a negative one fails Open.
	Quotas state.Limits
}
