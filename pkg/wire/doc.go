// Package wire holds what travels over Solo's HTTP API: the request and
// response bodies of every route, the error codes and the [ErrorBody] of
// every error reply, the media types, and the reports the API sends
// (deploys, applies, recoveries, verifications, database checks, sessions,
// assets, tokens).
//
// Both sides import it: package api (the server) encodes these types and
// package client decodes them. It is the contract between the two, so a
// program that talks to Solo links this package, the domain (package state)
// and the standard library, never the daemon. After Nomad's api package,
// which keeps the wire types with the client and has the server import them.
//
// Where a type is produced by the runtime (package solo) or the session
// manager (package session), it is defined here once and those packages
// alias it (solo.DeployResult is wire.DeployResult). Where it is produced
// by a lower layer that knows nothing of the API (eventstore's check,
// recovery's verifier), that layer keeps its own type and package api
// converts at the boundary; a test there keeps the two shapes equal.
//
// It must never import Solo's server side (eventstore, supervisor,
// recovery, capability, shutdown, packages solo, session, kernel and api)
// nor anything beyond the standard library, package state and the log's
// plain types (eventstore/event): the client's dependency test fails if it
// does. It holds data and the few pure methods on it; no I/O, no
// behaviour of the daemon.
package wire
