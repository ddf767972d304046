// Package state is the one home of Solo's domain events and of the pure fold
// of the event log into the world: which services exist, which should run,
// and what was last observed of each.
//
// It owns:
//   - [Spec], what a caller asks to run, with its defaults ([Spec.Normalize])
//     and its validation ([Spec.Validate], invariant I9);
//   - the event payloads, one Go type per [EventType], and their encoding at
//     the storage edge ([NewEvent], [Decode]); JSON exists nowhere else;
//   - the fold ([World.Apply], [Fold]) and what is derived from it
//     ([Service.State], [Service.View], [Service.Status] with its last
//     exits, bounded by [MaxExits]), and its snapshots
//     ([World.MarshalSnapshot], [UnmarshalSnapshot]);
//   - a service's story in sentences ([Story]), a pure function of its
//     events, which `solo why` and the API tell.
//
// Every reader of state (the Replayer, the Verifier, the API, the CLI) goes
// through this package.
//
// It never does I/O, never reads the clock (times come from envelopes, or
// a now passed in by the caller, as [Service.Status] and [Story] take),
// never starts anything and keeps no global mutable state. It knows the
// event log only through its plain types, [event.Event] and
// [event.Envelope] (package eventstore/event), and so does not link the
// store.
//
// # Ordering rules
//
// These are the specification of the fold; the tests check each.
//
// I5, order matters. For one service, the latest of its service_deployed and
// service_killed decides:
//   - killed after the latest deploy: not desired, never resurrected (state
//     killed); a kill of a name never deployed creates nothing;
//   - deployed again after a kill: desired again, with the new spec and
//     generation; restart count, failure and recovery error reset;
//   - a shutdown (system_shutdown_started ... system_shutdown_complete) is
//     not a kill: services stay desired, and an instance that exits during it
//     is "stopped", to come back on the next start;
//   - a start or restart request (service_start_requested,
//     service_restart_requested) of the current generation makes a killed,
//     failed or ended service desired again with the same spec and
//     generation; until an instance begins after it, the service is
//     starting. A request naming another generation is stale and ignored;
//   - service_removed forgets the service: it is gone from the World, its
//     later events are ignored like those of a name never deployed, and a
//     deploy of the name after it starts again at generation 1.
//   - tenant_policy_set replaces the whole [TenantPolicy] of its tenant
//     (a field added to the policy, a quota say, is folded with it);
//     tenant_user_allocated records the tenant's dynamic user once, a
//     later one is ignored. Both are read with [World.Tenant] and
//     [World.Tenants] and kept in snapshots.
//   - service_waiting of the current generation says a start waits for the
//     services it is after or requires ([Service.Waiting]); with no
//     instance running, the service is starting. Its next
//     service_started, a deploy, a kill or a start or restart request
//     clears it.
//
// Restarts: [Service.Restarts] counts the starts that followed an
// instance's own end. A start after a daemon shutdown (a clean stop and
// start of the daemon) and the start a request asked for are not counted;
// a start after a crash is, whether the crash was the service's or the
// daemon's (its instance's exit then recorded as unknown).
//
// I6, replay is deterministic and idempotent:
//   - the World is a function of the envelopes only (their positions, types,
//     streams, times and data), never of the clock or of map order;
//   - envelopes are folded in increasing position; one at or below
//     [World.Pos] is skipped, so folding a log twice, or a snapshot and a
//     tail that overlaps it, gives the same World;
//   - folding a prefix, snapshotting it and folding the rest from the
//     snapshot equals folding everything at once;
//   - observed facts only change the instance they name: an exit whose pid
//     is not the current instance's is ignored, so late reports of an older
//     instance never make the current one look dead.
//
// Unknown event types are skipped (forward compatibility), as are service
// events for a name never deployed.
//
// # Concurrency
//
// Nothing here is safe for concurrent mutation. A [World] is owned by one
// goroutine; hand readers a [World.Clone]. Specs and payloads are values.
//
// # Caveats
//
// A known event type whose data does not decode stops [Fold] with a
// [*DecodeError]: the log is the truth, and a payload this version cannot
// read is a bug to look at, not to paper over. [World.Apply] leaves the World
// unchanged in that case, so a caller that prefers to skip such an event can
// loop over Apply itself.
package state
