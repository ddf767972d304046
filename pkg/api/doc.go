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
// The bodies it reads and writes, the error codes and the media types are
// package wire's, which the Go client (package client) shares; the server
// imports them, never the other way round. Reports of the layers below the
// runtime (eventstore's check, recovery's verify and recover) are converted
// to their wire types here, in report.go.
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
//	GET    /v1/services?tenant=T                 200 [state.ServiceView] ("" or absent: every tenant)
//	POST   /v1/services                          body: state.Spec; ?wait=DUR; 200 wire.DeployResult
//	GET    /v1/services/{tenant}/{name}          200 state.ServiceStatus (a ServiceView, the spec without env values, the last exits, the next attempt)
//	DELETE /v1/services/{tenant}/{name}          200 wire.KillResult (stop = kill)
//	POST   /v1/services/{tenant}/{name}/stop     200 wire.KillResult (the same as DELETE)
//	POST   /v1/services/{tenant}/{name}/start    ?wait=DUR; 200 wire.DeployResult
//	POST   /v1/services/{tenant}/{name}/restart  ?wait=DUR; 200 wire.DeployResult
//	POST   /v1/services/{tenant}/{name}/signal   body: wire.SignalRequest; 200 wire.SignalResult; 409 if no live process
//	POST   /v1/services/{tenant}/{name}/remove   200 wire.RemoveResult; 409 (nothing written) if not stopped
//	GET    /v1/services/{tenant}/{name}/logs     ?tail=N (default 100, max 100000) &follow=1 &since=DUR; text/plain
//	                                             (since: the lines stamped within DUR, all of them unless tail is given;
//	                                             a log without timestamps is refused, 400 naming since)
//	GET    /v1/services/{tenant}/{name}/why      ?lines=N (default 20, max 1000); 200 wire.Story (state.Story's sentences)
//	GET    /v1/events                            ?from=POS &follow=1 &limit=N &tenant=T &service=NAME; NDJSON, or SSE if Accept: text/event-stream
//	                                             (service: one service's events, read through the store's stream index;
//	                                             its tenant defaults to the token's, else "default")
//	GET    /v1/db/check                          200 wire.CheckReport, or 500 corrupt with "problems"
//	GET    /v1/db/backup                         application/octet-stream: a consistent copy of the database
//	POST   /v1/apply                             body: wire.ApplyRequest (solo apply); 200 wire.ApplyResult
//	POST   /v1/recover                           body: wire.RecoverRequest; 200 wire.RecoverResult
//	POST   /v1/verify                            body: wire.VerifyRequest; 200 wire.VerifyReport
//	POST   /v1/tokens                            body: wire.TokenRequest; 201 wire.TokenGrant, the plaintext shown once
//	GET    /v1/tokens                            200 [wire.TokenView], never a secret
//	DELETE /v1/tokens/{id}                       revoke; 200 wire.TokenView
//	PUT    /v1/secrets/{tenant}/{name}           body: wire.SecretSetRequest; 200 wire.SecretSetReply (version, users)
//	GET    /v1/secrets                           ?tenant=T; 200 [wire.SecretView]: names, versions, times, never a value
//	DELETE /v1/secrets/{tenant}/{name}           200 wire.SecretView
//	PUT    /v1/tenants/{id}                      body: wire.TenantSetRequest (the fields to change); 200 wire.TenantView; local admin only
//	GET    /v1/tenants/{id}                      200 wire.TenantView: policy and dynamic user; local admin only
//	GET    /v1/tenants                           200 [wire.TenantView]; local admin only
//	GET    /v1/sessions                          200 [wire.SessionView]: kernel sessions
//	POST   /v1/sessions                          body: wire.CreateSessionRequest; 200 wire.SessionView
//	GET    /v1/sessions/{tenant}/{name}          200 wire.SessionView
//	DELETE /v1/sessions/{tenant}/{name}          remove a session; 200 wire.RemoveSessionResult
//	POST   /v1/sessions/{tenant}/{name}/restart  body: wire.RestartSessionRequest; run a lost session (its node died) again here, empty; 200 wire.SessionView, 409 if not lost
//	POST   /v1/sessions/{tenant}/{name}/tasks    body: wire.SubmitRequest (code, or a checkpoint/restore); 200 state.Task
//	GET    /v1/sessions/{tenant}/{name}/assets   200 [wire.AssetView] (outputs, files); renews their leases
//	POST   /v1/sessions/{tenant}/{name}/assets   body: wire.AddAssetRequest {"path": P}: keep a file of its directory as an asset
//	GET    /v1/tasks/{id}                        200 state.Task
//	GET    /v1/tasks/{id}/output                 ?follow=1; the task's output
//	POST   /v1/tasks/{id}/cancel                 cancel, interrupting the kernel if it runs; 200 state.Task
//	GET    /ui/...                               the web view (package webui), in HTML; it calls these routes in-process
//	                                             with its caller's credential (the login cookie, or the Authorization header)
//
// Each /v1 route needs one capability scope when the request carries a
// token (see [RouteScope] and [NewAuthorizer]); a route not listed there
// needs admin, so a new route fails closed.
//
// # Limits
//
// A confined principal (a token) is limited; the local admin never is.
// Right after authorisation, before the handler reads anything, the
// request takes one from its token's and its tenant's token buckets
// ([Options.Rates]); the runtime's tenant quotas (services, sessions,
// queued tasks: see package solo) are checked where each write is
// decided. Over either, the reply is 429 with code limited, the limit's
// name in "limit" (rate_per_token, rate_per_tenant, max_services,
// max_sessions, max_tasks) and a message that names it, and Retry-After
// in seconds: when the bucket has a request again, 5 s for a task queue,
// 60 s for a count of services or sessions (which only a removal frees).
// Nothing was written; the refusal is counted in solo_api_rejected_total
// by tenant and limit. The 429 of a rate may be held back until its
// Retry-After ([RateLimits.Hold]; the daemon holds it), so that a flood of
// clients retrying in a loop cannot take the CPU the other tenants need. Idle buckets (full again) are dropped, so their
// number stays bounded by the principals recently active.
//
// Every error is a [wire.ErrorBody], {"error": "...", "code": "..."}, with
// the status of its code (see wire's Code constants), for unknown routes (404
// not_found) and wrong methods (405 invalid, with Allow) too. A path that
// is not canonical ("//", "/./", "/../") answers 400 instead of a redirect.
// Booleans in queries are 1/true or 0/false.
//
// Without follow, events end at the head of the log as of the request;
// with follow, they continue live. Logs with follow send the tail, then
// what the service writes next, from the offset the tail ended at: no line
// is missed or sent twice between the two.
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
