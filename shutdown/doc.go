// Package shutdown owns how a Solo process ends: it turns signals into one
// bounded drain and an honest exit code ([Wait]), and, when Solo runs as
// PID 1 in a container or as a child subreaper, it reaps the orphaned
// zombies that are reparented to it ([Reaper]).
//
// # What it owns
//
//   - The signals: [Wait] waits for the first of [Options.Signals] (or its
//     context), calls [Options.Drain] with a reason naming the signal and
//     the grace, and cancels the drain's context on a second signal ("a
//     second signal forces at once"). It returns the exit code to use.
//   - The zombies that are not ours: [Reaper] wakes on SIGCHLD, finds the
//     zombie children of this process in /proc, and reaps by pid those that
//     no [supervisor.Watch] will reap ([supervisor.OwnChild] is false).
//
// The drain itself (system_shutdown_started, refusing writes, stopping the
// services in parallel within the grace, system_shutdown_complete) is the
// runtime's, passed in as [Options.Drain]: for example
//
//	code := shutdown.Wait(ctx, shutdown.Options{
//		Grace:  grace,
//		Logger: logger,
//		Drain: func(ctx context.Context, reason string, grace time.Duration) (int, error) {
//			res, err := rt.Shutdown(ctx, reason, grace)
//			return res.ExitCode, err
//		},
//	})
//	os.Exit(code)
//
// # What it must never do
//
//   - Reap with a blanket wait(-1) (or wait4(-1)): that would steal the
//     exit status of a service the supervisor is about to collect through
//     its pidfd, and the service's exit would be recorded as unknown. The
//     reaper waits on one pid at a time, only for zombies that are not
//     [supervisor.OwnChild], and only while [supervisor.HoldStarts] keeps a
//     new child from appearing unregistered.
//   - Exit the process or call os.Exit: [Wait] returns the code, main
//     exits.
//   - Decide what a drain does or how long each service gets: that is the
//     runtime's.
//
// # Concurrency
//
// [Wait] blocks until the drain returns. It is meant to be called once, by
// main: two concurrent Waits on the same signals would each receive every
// signal and start two drains.
//
// A [Reaper] runs one goroutine from [StartReaper] until [Reaper.Stop];
// [Reaper.Reaped] and [Reaper.WaitReaped] are safe for concurrent use.
// [BecomeSubreaper] and [IsInit] are about the whole process.
//
// # Caveats
//
//   - SIGCHLD coalesces: many children exiting at once may raise one
//     pending signal. So each wake-up scans all of /proc rather than
//     trusting one signal per child; the cost of a wake-up grows with the
//     number of processes visible in /proc (small in a container).
//   - Only children started through [supervisor.Start] are protected. A
//     child started any other way in the same process (os/exec, for
//     instance) can have its zombie reaped by the [Reaper] before its own
//     Wait; then that Wait fails with ECHILD. Start children through the
//     supervisor when the reaper runs.
//   - Signals are caught only while [Wait] runs. Before it is called and
//     after it returns, SIGTERM and SIGINT have the Go runtime's default
//     effect: the process dies at once, with no drain. Call Wait in main
//     before anything worth draining has started.
//   - A service's zombie whose [supervisor.Watch] is closed without being
//     reaped stays registered, so the reaper leaves it alone; it remains a
//     zombie until Solo exits.
//   - Linux only: /proc, prctl(PR_SET_CHILD_SUBREAPER) (3.4).
package shutdown
