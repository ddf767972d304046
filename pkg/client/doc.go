// Package client is the Go client of Solo's HTTP API (package api), as the
// CLI uses it: over the daemon's unix socket, or over TCP.
//
// It owns the wire side of each route: building paths and queries, sending
// the token, decoding replies and streams (NDJSON events, logs, backups),
// and turning failures into errors a caller can act on. It must never put
// the token in an error or a log, never retry a request that may have been
// acted on, and never follow a redirect.
//
// The bodies it sends and receives are package wire's, shared with the
// server; services, specs and tasks are the domain's (package state), and
// events are the log's plain envelopes (package eventstore/event). It must
// never import the daemon's side (the event store, the supervisor,
// recovery, the runtime, sessions, the server): a program that talks to
// Solo links only these, the standard library and ulid. A test
// (deps_test.go) keeps it so.
//
// # Usage
//
//	c, err := client.New(client.Options{Socket: "/home/me/.local/state/solo/solo.sock"})
//	res, err := c.DeployWait(ctx, state.Spec{Name: "web", Command: []string{"./web"}}, 5*time.Second)
//	if res.StartError != "" { ... } // it could not start: why
//	res, err = c.Restart(ctx, "default", "web", 5*time.Second) // also Start, Kill (stop), Signal, Remove
//	views, err := c.List(ctx, "")
//	err = c.Events(ctx, 0, true, func(env event.Envelope) error { ...; return nil })
//
// # Errors
//
//   - [ErrUnreachable] (check with errors.Is): the daemon could not be
//     reached; nothing was sent. The error names the socket or address.
//   - [*APIError] (check with errors.As, or [IsNotFound], [IsDenied],
//     [IsInvalid]): the daemon answered with an error; Code is one of the
//     wire.Code constants.
//   - An error wrapping state.ErrInvalidName: a tenant or name refused
//     before sending, by the daemon's own rule.
//   - Anything else: the connection broke, ctx ended, or a reply did not
//     decode.
//
// # Concurrency
//
// A [Client] is safe for concurrent use and reuses connections. Streams
// (Events, Logs with follow, DBBackup) hold one connection each until they
// end; cancel their ctx to end them.
package client
