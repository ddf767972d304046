// Package api is Solo's HTTP API: the server that the CLI (through package
// client) and other programs talk to, over a unix socket or TCP.
//
// It owns the routes, the mapping of errors to HTTP statuses and codes,
// request authorisation's seam ([Options.Authorize] and [Principal]), tenant
// confinement, streaming of events and logs, and Solo's Prometheus metrics
// ([Metrics]). It must never write to the event log except through the
// [solo.Runtime] (so every write is validated, and invalid input writes
// nothing: I9), never hold a lock while it writes to a client (I8), never
// log a request body or a credential, and never tell a confined principal
// whether another tenant's service exists.
//
// # Usage
//
//	m := api.NewMetrics(reg)
//	rt, err := solo.Open(ctx, solo.Options{..., Store: &eventstore.Options{OnCommit: m.ObserveCommit}})
//	m.Bind(rt)
//	srv := api.New(rt, api.Options{Logger: log, Metrics: m})
//	l, err := net.Listen("unix", socket)
//	go srv.Serve(ctx, l)
//	// ... recovery done:
//	srv.SetReady(true)
//
// # Routes
//
//	GET    /healthz                              200 {"status":"ok"}
//	GET    /readyz                               200 {"status":"ready"}, or 503 until SetReady(true)
//	GET    /metrics                              Prometheus text
//	GET    /v1/services?tenant=T                 200 [ServiceView] ("" or absent: every tenant)
//	POST   /v1/services                          body: state.Spec; 200 solo.DeployResult
//	GET    /v1/services/{tenant}/{name}          200 ServiceView
//	DELETE /v1/services/{tenant}/{name}          200 KillResult
//	GET    /v1/services/{tenant}/{name}/logs     ?tail=N (default 100, max 100000) &follow=1; text/plain
//	GET    /v1/events                            ?from=POS &follow=1 &limit=N; NDJSON, or SSE if Accept: text/event-stream
//	GET    /v1/db/check                          200 eventstore.CheckReport, or 500 corrupt with "problems"
//	GET    /v1/db/backup                         application/octet-stream: a consistent copy of the database
//	POST   /v1/apply                             body: ApplyRequest (solo apply); 200 solo.ApplyResult
//	POST   /v1/recover                           body: RecoverRequest; 200 RecoverResult
//	POST   /v1/verify                            body: VerifyRequest; 200 recovery.VerifyReport
//	POST   /v1/tokens                            grant; 201 with the plaintext, shown once
//	GET    /v1/tokens                            list, never a secret
//	DELETE /v1/tokens/{id}                       revoke
//	GET    /v1/sessions                          kernel sessions
//	POST   /v1/sessions                          create a session
//	GET    /v1/sessions/{tenant}/{name}          one session
//	DELETE /v1/sessions/{tenant}/{name}          remove a session
//	POST   /v1/sessions/{tenant}/{name}/tasks    submit code (or a checkpoint/restore)
//	GET    /v1/sessions/{tenant}/{name}/assets   its assets (outputs, files); renews their leases
//	POST   /v1/sessions/{tenant}/{name}/assets   {"path": P}: keep a file of its directory as an asset
//	GET    /v1/tasks/{id}                        task status
//	GET    /v1/tasks/{id}/output                 ?follow=1; the task's output
//	POST   /v1/tasks/{id}/cancel                 cancel, interrupting the kernel if it runs
//
// Each /v1 route needs one capability scope when the request carries a
// token (see [RouteScope] and [NewAuthorizer]); a route not listed there
// needs admin, so a new route fails closed.
//
// Every error is an [ErrorBody], {"error": "...", "code": "..."}, with the
// status of its code (see the Code constants), for unknown routes (404
// not_found) and wrong methods (405 invalid, with Allow) too. A path that
// is not canonical ("//", "/./", "/../") answers 400 instead of a redirect.
// Booleans in queries are 1/true or 0/false.
//
// Without follow, events end at the head of the log as of the request;
// with follow, they continue live. Logs with follow send the tail, then
// what the service writes next; a line written between the two reads may
// be missed or sent twice.
//
// # Concurrency
//
// A [Server] is safe for concurrent use, and each request runs on its own
// goroutine. Followed streams (events, logs) end when their client goes
// away or when a [Server.Serve] begins its shutdown. A slow client slows
// only its own reply: event subscriptions fall back to reading the store
// when their buffer fills, log followers are woken through a one-slot
// channel, and a backup is spooled to a temp file before it is sent.
//
// # Caveats
//
//   - /healthz, /readyz and /metrics are not authorised: they tell no
//     service name. Bind the TCP listener accordingly.
//   - The /v1 routes answer before SetReady(true): by the time a Server
//     exists, solo.Open has restored the services. Readiness is for probes.
//   - The backup needs free space beside the database for one copy.
package api
