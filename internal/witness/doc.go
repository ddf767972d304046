// Package witness is the observer of the cluster tests: every instance of
// a service under test reports to it ([Report], [Send]) every
// [DefaultInterval], and the test asks it ([Client]) whether a service ever
// ran twice at once, whether its fences only increased, and which instance
// runs it now. It is a test tool: no daemon code imports it.
//
// # Usage
//
// The witness runs as its own process, `solo _witness`, which prints one
// line of JSON with its two addresses ([Addrs]) and serves until it is
// signalled. The program a test deploys is `solo _report --witness ADDR`,
// which sends a [Report] every 100 ms until it is killed:
//
//	w := exec.Command(solo, "_witness")         // reads Addrs from stdout
//	solo deploy web -- solo _report --witness 127.0.0.1:40001
//	c := witness.NewClient(addrs.HTTP)
//	st, err := c.Wait(ctx, func(st witness.State) bool { return len(st.Services["default/web"].Live) == 1 })
//	// ... SIGKILL a node ...
//	c.MarkDead(ctx, witness.Dead{Node: "n2"})
//	st, err = c.Wait(ctx, func(st witness.State) bool { return st.RunningOnce("default/web") == nil })
//	st.Violations()                             // must be empty: never twice, fences only up
//
// # Protocol
//
// Reports are UDP datagrams on 127.0.0.1, one JSON [Report] each: a
// reporter never blocks on the witness, and keeps running, and reporting,
// when nobody listens (a stale instance must stay visible). Queries are
// HTTP on another port: GET /state (with ?after=V, it waits until the
// state's version passes V, or up to the liveness window), and POST /dead
// with a JSON [Dead].
//
// # Time and the overlap rule
//
// Every time is CLOCK_MONOTONIC in nanoseconds, read by the reporter when
// it sends: all processes of a test share one machine and so one
// monotonic clock, and a report's time is an instant at which its process
// was certainly alive, however long the datagram then waited in a socket
// buffer. An instance (a (node, pid) pair of one service) was seen alive
// over [First, Last], its first and last report.
//
// Two instances of a service ran at once when their intervals overlap:
// the one that began reporting later began before the other's last
// report (later.First < earlier.Last), or both began at the same instant.
// A new instance that starts within a report interval after the old one's
// last report is not an overlap, however short the gap: nothing proves
// the old one was alive then. [ServiceState.MaxLive] is the largest number
// of instances alive at one instant by this rule, over the whole run.
//
// An instance is live now while it has reported within the window
// ([DefaultWindow], 1 s: ten missed reports, generous on a loaded
// machine) and the test has not declared it dead ([Dead]). Liveness
// decides [ServiceState.Live], the current instances; it never decides
// an overlap, which only reports prove.
//
// Fences only increase when no report with a lower fence was sent after
// the first report with a higher one ([ServiceState.FenceRegressions]).
// Equal fences across instances are allowed: a service restarted in
// place keeps its assignment.
//
// # Concurrency
//
// A [Ledger] is safe for concurrent use; [Server] feeds it from one
// goroutine and answers queries from others.
//
// # Caveats
//
//   - UDP on loopback drops a datagram only when the witness's socket
//     buffer is full. A dropped report shortens an interval, which can hide
//     an overlap shorter than a report interval, never invent one;
//     [ServiceState.Missing] counts the gaps in each instance's sequence
//     numbers so that a test can tell.
//   - A report sent after the test declared its instance dead is counted
//     in [ServiceState.AfterDeath]: the test's belief was wrong.
package witness
