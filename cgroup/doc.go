// Package cgroup contains services in control groups: one cgroup per
// service, under one cgroup of the installation, with the service's limits
// (memory, CPU, pids), through github.com/containerd/cgroups/v3 for both
// cgroup v1 and cgroup v2.
//
// # Layout
//
// A [Manager] owns the cgroups of one installation (one data dir). Its root
// is `solo-<hash>`, where hash is the first 16 hex digits of the SHA-256 of
// the data dir's absolute path ([RootName]), directly under the top of each
// hierarchy; a service's cgroup is `solo-<hash>/<tenant>/<name>` ([Manager.Path]).
// The path is the same for every start of the daemon, so a daemon that
// restarts finds the cgroups of the services it re-adopts, and two
// installations on one host never share one.
//
// cgroup v2 is used where the unified hierarchy offers the memory, cpu and
// pids controllers to Solo's root; otherwise cgroup v1, where a service
// joins the freezer (which lists its processes and holds them still while
// they are killed) and only the controllers of the limits it sets (memory;
// cpu and cpuacct; pids), each where it is mounted: every controller joined
// costs each start an attach, which the kernel serialises with every fork. Where
// neither can be written (not root, no delegation), [Open] returns a
// Manager that is not [Manager.Available], with the reason, and the caller
// falls back to process groups.
//
// # Joining before exec
//
// A process never runs outside its cgroup, not even between fork and exec
// ([Group.Enter], [Group.Start]). With cgroup v2 the child is cloned into its cgroup
// (clone3 with CLONE_INTO_CGROUP, through [syscall.SysProcAttr.UseCgroupFD]).
// cgroup v1 has no such flag, but it places threads, not processes: a
// child is born in the cgroups of the thread that forks it. So the start
// runs on a goroutine locked to its OS thread; the thread joins the service's
// cgroups (the v1 `tasks` file), forks the child, and goes back to the
// daemon's own cgroups before anything else may look at the group (a
// thread left there would put the daemon's pid in the group's list, for a
// kill or a freeze to reach). If it cannot go back, the goroutine ends
// still locked, and the Go runtime ends the thread with it. (A re-exec
// shim, or a child held stopped until it is moved, would cost a second
// exec or a ptrace stop per start; moving one thread costs two writes per
// controller joined.) The thread names itself in those writes ("0", not
// its thread id): the kernel then moves it without write-locking the
// host-wide lock every fork and exit takes, so a start neither waits for
// the forks around it nor holds them up.
//
// # Cost
//
// [Group.OOMKills] reads its one counter file: the library reads counters
// only as part of a full Stat, about a hundred times slower, and every
// start and end of a service reads it. An empty cgroup is not removed at a
// drain (its service comes back at the next start); [Manager.Remove] and
// [Manager.Prune] remove them.
//
// # Killing
//
// [Group.Kill] SIGKILLs every process of the cgroup and waits until it is
// empty: with v2 through cgroup.kill; with v1 the cgroup is frozen first,
// so that no process forks or exits (and no pid is reused) between the
// listing and the signal, then thawed, and the cgroup's process list is read
// again, with backoff, until it is empty (v1 tells no event when a cgroup
// empties).
//
// # What it must never do
//
//   - Import anything of Solo: it is below the supervisor.
//   - Signal a process that is not in the cgroup.
//
// # Concurrency
//
// A [Manager] and a [Group] are safe for concurrent use; [Group.Kill] and
// [Group.Delete] of one group should not race a [Group.Start] of it (the
// supervisor's loop runs them in turn).
//
// # Caveats
//
//   - Without the v1 freezer, a process that forks while Kill runs may
//     have a child Kill did not see; Kill lists again until the cgroup is
//     empty, so the child dies on the next pass.
//   - With v1, pids_max counts the daemon's starting thread for the
//     instant of the fork; the limit is applied once the thread is gone,
//     so a service may briefly hold one process more than its pids_max.
//   - With v2, the daemon must be able to write to its root: run it as
//     root, or under systemd with Delegate=yes and the root inside the
//     delegated subtree (not exercised on the development machines, which
//     expose no v2 controllers).
package cgroup
