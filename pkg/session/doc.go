// Package session runs kernel sessions: named, long-lived Jupyter kernels,
// each with a durable, ordered queue of tasks, so that nothing is lost or
// run twice when Solo crashes.
//
// It owns the [Manager] (create, remove, submit, cancel, wait, follow
// outputs, checkpoint, restore), one worker per session that talks to the
// session's kernel through package kernel, and the signed checkpoint files
// ([WriteCheckpoint], [ReadCheckpoint]). What happened is recorded as
// session_* and task_* events, whose types and fold ([state.Sessions]) live
// in package state with every other event.
//
// It never starts or signals a process itself: a kernel is an ordinary
// Solo service, "session.NAME", running ipykernel (`PYTHON -c LAUNCHER
// kernel.json kernels/`: each start binds ports of its own and writes
// them to kernels/PID.json, which the worker waits for), deployed, restarted, re-adopted after a crash and killed through
// the [Host] (the runtime), and signalled only through its identity check.
//
// Nor does it follow the log: the runtime's follower is the one
// subscriber that folds it, services and sessions alike. The manager
// reads the sessions from that fold ([Host.ReadSessions]), waits on it
// after each of its writes ([Host.WaitFolded]), so that a read after a
// write sees it, and is told of each envelope folded ([Host.Watch]).
//
// # Rules
//
//   - Acknowledged = durable: [Manager.Submit] returns once task_submitted
//     is fsynced. Tasks of a session run one at a time, in submission order.
//   - Write-ahead: task_started is recorded before the kernel sees the code.
//     So a task the log says runs, but that no worker runs, was cut short
//     by a daemon (or kernel) death: the worker settles it once connected
//     to the kernel again. A retryable task runs again (attempt + 1); any
//     other gets task_failed with reason interrupted, and is never run
//     again (a kernel that survived is interrupted first, in case it still
//     runs it).
//   - A kernel process other than the one the session last had (the
//     service restarted it) is recorded with session_kernel_ready
//     state_lost: its variables are gone.
//   - Heartbeats: a kernel that misses [Options.HeartbeatMisses] pings in a
//     row is hung: it is SIGKILLed (identity-checked) and its service
//     restarts it. A task that ran on a kernel that died fails with reason
//     kernel_died (or runs again, if retryable).
//   - Cancel: a pending task gets task_cancelled and never runs; a running
//     one is interrupted (interrupt_request on control, else SIGINT) and
//     fails with reason cancelled.
//   - Outputs are kept in a file per task,
//     DataDir/sessions/TENANT/NAME/tasks/ID.out (mode 0600), rendered as
//     `solo task output` prints them and bounded by
//     [Options.MaxOutputBytes] (past it, a note says they were truncated,
//     and the task's end records it). See # Outputs.
//   - Assets: a task's output file, and any file of the session's
//     directory a caller marks with [Manager.AddAsset], is kept under a
//     lease, and deleted by a sweep once the lease has ended. See # Assets.
//   - Checkpoints are the kernel's pickle of its user namespace (names it
//     cannot pickle are skipped and reported), signed with HMAC-SHA256
//     under a key in DataDir/sessions/checkpoint.key (mode 0600) and written
//     atomically. A restore verifies size, signature and label before any
//     byte reaches the kernel.
//   - Who a kernel runs as is the host's rule ([Host.RunAs]: the runtime's
//     for every service). A kernel that runs as its tenant's user rather
//     than the daemon's is given its session's files and no more:
//     sessions/, sessions/TENANT and the session's directory stay the
//     daemon's (0711: passed through, never listed), kernel.json is
//     readable by the kernel's group (0640), kernels/ and ipython/ are the
//     kernel's own (0700), checkpoints/ stays the daemon's (0711) and each
//     pickle file the daemon makes there is handed to the kernel by
//     descriptor, so a kernel can plant no link where the daemon writes.
//     Such a kernel cannot create files at the top of its session's
//     directory (its working directory); of that directory it writes
//     kernels/ and ipython/ only.
//
// # Outputs
//
// Each output of a running task is rendered and written to the task's
// output file as it arrives, with one write(2), before any reader can see
// it: a SIGKILL of the daemon loses none of it, and after a restart
// `solo task output ID` shows what the task printed before, while the task
// is reported interrupted (see Rules). The file is fsynced at most every
// [Options.OutputSyncEvery] while output flows (what a crash of the host
// may lose) and always before the task's end is recorded, so an end in the
// log never claims more output than the disk has. It is append-only: a
// retryable task's next attempt appends, after a note.
//
// Outputs are not events. One event per chunk would flood the log (a
// print loop makes thousands), and batching chunks into events would
// still copy up to [Options.MaxOutputBytes] per task into a log that is
// kept forever, replicated, and folded into memory at each start. The log
// records what the outputs are (task_started adds the file as an asset,
// the task's end records its size, truncation and lease) and the file
// holds them. That is also what the secrets rule asks: what a task prints
// may be anything, and it stays in a 0600 file that is collected with its
// lease, never in the log. Tasks that ended before this design have their
// outputs in their end event, and are shown from there.
//
// # Assets
//
// An asset is a file of a session's directory (the kernel's working
// directory) that Solo keeps for a while, then deletes: a task's output
// (kind output, path tasks/ID.out, id the task's), or a regular file a
// caller marked ([Manager.AddAsset]; the path may not be absolute, escape
// the directory with ".." or a link, or be Solo's own). Each has a lease
// of [Options.AssetTTL]: an output's starts when its task ends (it is held
// while the task runs), a file's when it is added. Reading renews it:
// opening a task's output ([Manager.OpenOutput]) and listing a session's
// assets ([Manager.Assets]). A renewal is recorded (asset_renewed) only
// when an eighth of the TTL has passed since the last, so readers do not
// flood the log either.
//
// One sweeper goroutine waits, on one timer of [Options.Clock], for the
// earliest lease to end, and then [Manager.Sweep] deletes every file whose
// lease has ended and records asset_collected (session, id, kind, relative
// path, size, reason lease_expired). Reads and the sweep take one lock, so
// a read asset is never collected under its reader, and a held or leased
// asset never is. Registrations, renewals and collections are events
// folded with the sessions ([state.Sessions]), so leases survive a
// restart; an output whose task ended without a recorded lease (a crash,
// a removed session) has one from its task's end.
//
// # Concurrency
//
// A Manager is safe for concurrent use. The host's follower goroutine
// calls the manager after it folded each envelope (the function given to
// [Host.Watch]): that call reads the fold, starts the worker of a session
// that became live, wakes the worker of the session concerned, the
// sweeper, and the callers of [Manager.Wait] and [OutputReader.Copy]; it
// takes only short locks and never blocks, since the host folds nothing
// else meanwhile. Each worker goroutine owns its kernel connection; one
// sweeper goroutine runs the sweeps. Reads of the fold are short copies
// made under the host's lock, with no lock of the manager held. The
// kernel's reader writes outputs to the task's file under a short lock;
// readers ([OutputReader.Copy]) take the size written under that lock and
// read the file unlocked, so a slow reader holds up neither the kernel,
// nor other readers, nor the fold (I8).
//
// # Cluster
//
// In a cluster ([Options.Node] set), a session runs on the node that
// created it: session_created records the node, the kernel service's spec
// names that node only, and only that node's manager runs a worker (and
// sweeps assets) for it. Every node answers for every session from the
// log, which is the same on all of them, naming the node it runs on
// (View.Node): list, status, submit, cancel, checkpoint and restore are
// log writes that the owning node's worker follows, so any node takes
// them. What only the owning node's disk has, a task's output file and
// the session's assets, is refused elsewhere with [ErrElsewhere], naming
// the node to ask: requests are not forwarded between nodes.
//
// If that node dies (its lease gone), the placement leader records
// session_lost ([state.SessionLost]): its running and pending tasks fail
// with reason node_lost, its kernel service is killed rather than moved,
// status says "lost: node n2 died at ...", and a submit gets [ErrLost].
// Nothing restarts it silently. [Manager.Restart] (`solo session
// restart`) runs it again on the node asked, empty: a new kernel, no
// variables, no queue; checkpoint files stay on the dead node's disk.
//
// # Caveats
//
//   - A clean daemon shutdown stops every service, kernels included (a
//     shutdown is not a kill: they come back, empty). Only a crash leaves
//     kernels running to be re-adopted with their variables.
//   - Close the manager before its host's follower stops: a [Manager.Wait]
//     or a following [OutputReader.Copy] ends with [ErrClosed] at Close,
//     not when the follower stops.
//   - The sweep scans every asset when it is woken (an asset or a task's
//     end changed): fine for thousands of assets, not for millions.
//   - A listing renews the leases of what it lists: a script that lists a
//     session's assets keeps them all.
//   - Assets outlive a removed session until they are collected, but are
//     listed only through a live session of that name.
//   - In a cluster, the outputs and assets of a session restarted
//     elsewhere stay on the dead node's disk (and in its listing, never
//     collected by another node).
//   - A file asset's path is checked, links resolved, when it is added;
//     the sweep deletes through an [os.Root] of the session's directory,
//     so a link planted later cannot lead it out of the directory.
package session
