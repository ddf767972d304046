// Package supervisor runs services: the tree of per-service loops
// (restart policy, intensity limit, backoff; one-shots such as the
// recovery pass under suture) and, under it, the OS process layer: process
// identity, exit notification, starting, stopping, and per-service log
// files.
//
// # Service loops
//
// A [Service] runs one [Key] (tenant, name) under a [Tree]: it starts an
// instance through a [Runner] (an OS process, [ProcessRunner], or an
// in-process Go service, [FuncRunner], whose panics are caught and count as
// failures), waits for it to end, reports what it observed to its owner's
// [Recorder], and applies the [Policy] its owner gave it. Restarts within
// the policy's window are counted per service (suture counts per
// supervisor) and spaced by [Backoff]; past [Policy.MaxRestarts] the loop
// reports [GaveUp] and ends. What follows an exit (a restart, its number
// within the window and its delay, or none) is decided in one place,
// before the exit is reported, and the [Exited] fact says it, so that the
// owner's record tells when the next attempt comes without a second copy
// of the rule. A loop returns only once its instance is
// stopped and its exit recorded. The [Tree] holds at most one loop per key.
//
// # Facts, not events
//
// The supervisor speaks its own language of processes: it is given a [Key],
// a generation and a [Policy], and it reports typed facts, [Started],
// [Ready] (when [ServiceConfig.Ready] is set and passes), [Health] (each
// change of health, when [ServiceConfig.Health] is set), [Exited] and
// [GaveUp], each once durable before it acts on the next
// ([Recorder.Record]). A readiness check runs on a goroutine of its own
// only from a start until it passes or its deadline; past the deadline the
// instance is stopped with the one stop procedure and the attempt counts as
// a failed start. A health watch is the owner's (no goroutine of the
// loop's); when it reports a failure the instance is stopped the same way
// and its exit's Err wraps [ErrUnhealthy]. [Run] runs a short-lived child
// (an exec probe) to its end, killed with its process group if its context
// ends first. It never builds the domain's events nor reads the
// log: its owner (the runtime) records each fact as a domain event, and
// derives the [Policy] from a spec.
//
// # Process identity
//
// An [Identity] is (pid, start ticks, boot id). [Verify] is the one check of
// invariant I4: a pid is signalled only if the live process matches the
// record. [Signal] and [SignalGroup] open a pidfd first and verify second, so
// the process cannot be swapped between check and signal. A [Process] keeps
// such a verified pidfd for its whole life.
//
// Every process a [ProcessRunner] starts carries a [Marker] in its
// environment ([MarkerEnv]): the installation, service, generation and
// attempt. [Marker.String] writes it and [ParseMarker] reads it, the one
// place that knows its form; [ReadEnvVar] and [ListPIDs] let a caller find
// marked processes in /proc.
//
// # Exits
//
// A [Watch] learns that a process exited through a pidfd in the Go runtime's
// poller: a waiting goroutine holds no OS thread (unlike [os.Process.Wait]).
// For our own children the exit status is learned without reaping, the rest
// of the process group is swept with SIGKILL while the zombie leader still
// holds the group id, and only then is the leader reaped ([Process.Finish]).
// A re-adopted process ([Adopt]) is watched the same way; its status is
// [Exit.Unknown].
//
// # Starting and stopping
//
// [Start] puts each service in its own process group with stdin on /dev/null
// and stdout and stderr on a file, as the [Credential] it is given (set in
// the child as runuser does: groups, gid, uid, then the directory) and with
// its own umask, and, given the service's cgroup ([StartOptions.Cgroup],
// package cgroup), in that cgroup from its first instruction. A service
// gets HUP, INT, QUIT, TERM, USR1, USR2, PIPE and ALRM at their default
// action even when the daemon was started ignoring them (nohup): the
// daemon catches and drops those instead, so exec resets them.
// [LookupAccount] resolves a user as initgroups does; [LookPath] and
// [CheckDir] tell, before a start, whether a command and a directory can be
// used by a credential. The log file is opened by the daemon and handed to
// the child, so a service of any user can write it. [Stop] is the one stop
// procedure: stop signal to the group, wait up to the timeout, SIGKILL the
// group, sweep, reap. The sweep ([Process.Finish]) also kills everything
// left in the service's cgroup and waits until it is empty, so that a
// child that left the process group (setsid, a double fork) ends with the
// service; a re-adopted process is given its cgroup by [Process.Contain].
// An exit during which the cgroup's OOM kill count rose is [Exit.OOM].
//
// # Log files
//
// [Logs] owns dir/KEY.log files that children write to directly, rotated by
// size (copy-then-truncate) as one inotify watcher notices growth; [Logs.Tail]
// and [Logs.Follow] read them for `solo logs`. Files are 0600 in 0700
// directories: a child writes through the descriptor it is given, so it
// needs no access by path, whoever it runs as.
//
// # What it must never do
//
//   - Import the domain (pkg/state) or the event log, even indirectly; a
//     test of the package's imports keeps it so.
//   - Signal a pid that has not passed [Verify] (through a pidfd opened
//     before the check), or signal the group -1 or -0.
//   - Block an OS thread per child, or poll for exits.
//   - Reap with a blanket wait(-1), which would steal other children's
//     statuses; only the pidfd of a [Watch] is ever waited on.
//   - Hold a pipe to a service's output. A service whose output is to be
//     timestamped writes to a pipe read by a log stamper process of its
//     own ([ProcessRunner.Stamper], [Stamp]), never by the daemon: the
//     stamper outlives the daemon as the service does.
//
// # Concurrency
//
// A [Tree] runs each loop on one goroutine, parked while its instance
// runs; a start and each record run on a short-lived goroutine of their
// own, at most 64 at once across the process. [Watch], [Process] and
// [Logs] are safe for concurrent use. [Watch.Wait]
// calls run one at a time; each honours its own context. [Stop] blocks until
// the process is reaped (or fails); [Process.Finish] and [Watch.Reap] never
// block. [Logs] runs one goroutine, stopped by [Logs.Close]; [Logs.Follow]
// runs on its caller's goroutine.
//
// # Caveats
//
//   - Linux only: pidfds (5.3), waitid(P_PIDFD) (5.4), and
//     PIDFD_SIGNAL_PROCESS_GROUP (6.9; older kernels fall back to
//     kill(-pid) right after a [Verify]).
//   - A re-adopted process is not our child: its exit status is unknown and
//     its real parent (init or a subreaper) reaps it.
//   - A re-adopted process that does not lead its own process group is
//     signalled alone; it has no group to sweep.
//   - Without a cgroup, a service that moves itself to another process
//     group or session escapes the group sweep; find it by its
//     SOLO_SERVICE environment marker ([ReadEnvVar]).
//   - Something else in the daemon that calls wait(-1) or
//     [os.Process.Wait] on our children steals their statuses; then the
//     [Exit] is [Exit.Unknown].
//   - [LookPath] and [CheckDir] judge by mode bits, owner and group, as
//     the kernel does without ACLs or capabilities other than root's: an ACL
//     that grants or denies more is not seen until the start itself.
//   - An umask costs the start one OS thread: the fork runs on a thread of
//     its own whose file-system context is unshared, which then ends.
//   - Log rotation loses the bytes written between copy and truncate, and a
//     file can overshoot MaxSize by what is written in about one
//     CheckInterval (see [Logs]). A key's own limits ([Logs.OpenLimited])
//     hold from its Open on; a re-adopted process's log is opened again
//     for its limits and watch by [ProcessRunner.WatchLog].
//   - A stamped line carries the time the stamper read its first bytes,
//     a few microseconds after the service wrote them; a line written in
//     several writes is stamped once, at its start.
package supervisor
