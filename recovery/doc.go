// Package recovery brings the running world back in line with the log: the
// one-shot [Replayer] at start, the [Verify] pass (at start and on demand),
// and [Recover] for `solo recover`.
//
// It owns the decisions: which recorded process to re-adopt, what to start,
// which marked processes are strays to stop. [Plan] and [Compare] are pure
// functions of the folded world and of the processes alive now that are
// provably ours: a recorded instance by its pid, start time and boot id
// ([Observe]), any other process by the SOLO_SERVICE marker ([Scan]), and, where
// services run in cgroups ([Container]), by being in a service's cgroup
// (see [Observation.MemberOf]), so each rule has a table test.
// The runtime carries the decisions out through [Target].
//
// It must never append service_deployed (I6), never start a service the log
// does not say should run (I5), never leave two instances of one service
// running (I3: strays are stopped before anything starts), and never signal
// a process that neither carries this installation's marker nor is in one of
// its services' cgroups (I4: every stop re-checks pid, start time and boot
// id through a pidfd).
//
// # Restore
//
// As with containerd's shim restore, the pass runs under one deadline and
// each service fails on its own: a service that cannot be brought back gets
// service_recovery_failed with a reason, and the others carry on; one whose
// recovery panics (an in-process kind's factory is the program's own code)
// fails the same way, the panic its reason. Facts are recorded in as few
// commits as possible, and only then are instances handed to their loops,
// so no loop can record an exit before its start.
//
// # Caveats
//
//   - A process forked by a dying daemon that has not yet called exec
//     carries the daemon's environment, not its marker, for a few
//     microseconds; a scan in that instant would miss it.
//   - Without cgroups, a process that clears its own environment, or
//     moves to another process group, escapes the scan's grouping. With
//     them, its cgroup still ties it to its service; which instance it
//     came from it cannot say, so while the service runs it is taken as
//     the running instance's.
package recovery
