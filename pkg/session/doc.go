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
// Solo service, "session.NAME", running `PYTHON -m ipykernel_launcher -f
// FILE`, deployed, restarted, re-adopted after a crash and killed through
// the [Host] (the runtime), and signalled only through its identity check.
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
//   - Checkpoints are the kernel's pickle of its user namespace (names it
//     cannot pickle are skipped and reported), signed with HMAC-SHA256
//     under a key in DataDir/sessions/checkpoint.key (mode 0600) and written
//     atomically. A restore verifies size, signature and label before any
//     byte reaches the kernel.
//
// # Concurrency
//
// A Manager is safe for concurrent use. One follower goroutine folds the log
// into the projection and wakes the workers; each worker owns its kernel
// connection. Outputs of a running task are kept per task, bounded by
// [Options.MaxOutputBytes]; the kernel's reader appends under a short lock,
// and readers ([Manager.Output]) copy and write unlocked, so a slow reader
// holds up neither the kernel nor other readers (I8).
//
// # Caveats
//
//   - A clean daemon shutdown stops every service, kernels included (a
//     shutdown is not a kill: they come back, empty). Only a crash leaves
//     kernels running to be re-adopted with their variables.
//   - The projection is folded from the start of the log at each Open; it
//     has no snapshot of its own yet.
//   - The outputs of a task that was running when the daemon died are
//     lost with it: they live in memory until the task's end is recorded.
package session
