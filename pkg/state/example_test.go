package state_test

import (
	"fmt"
	"time"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/state"
)

// ExampleFold folds a small log: deployed, started, killed, deployed again.
func ExampleFold() {
	var log []eventstore.Envelope
	add := func(tenant, subject string, p state.Payload) {
		ev, err := state.NewEvent(tenant, subject, p)
		if err != nil {
			panic(err)
		}
		log = append(log, eventstore.Envelope{
			Pos: uint64(len(log) + 1), Time: time.Unix(int64(len(log)), 0).UTC(),
			Type: ev.Type, Tenant: ev.Tenant, Subject: ev.Subject, Data: ev.Data,
		})
	}
	spec := state.Spec{Name: "web", Command: []string{"/usr/bin/web", "--port", "8080"}}
	add("", "", state.Deployed{Spec: spec, Generation: 1})
	add("default", "web", state.Started{Generation: 1, Attempt: 1, PID: 4242})
	add("default", "web", state.Killed{Reason: "operator"})

	events := func(yield func(eventstore.Envelope, error) bool) {
		for _, env := range log {
			if !yield(env, nil) {
				return
			}
		}
	}
	w, err := state.Fold(nil, events)
	if err != nil {
		panic(err)
	}
	web, _ := w.Service("default", "web")
	fmt.Println(w.Pos(), web.State(), web.Desired)

	add("", "", state.Deployed{Spec: spec, Generation: w.NextGeneration("default", "web")})
	w, _ = state.Fold(w, events) // the first three are skipped: already folded
	web, _ = w.Service("default", "web")
	// Running: the generation-1 instance was never seen to exit; it serves
	// until the supervisor replaces it.
	fmt.Println(w.Pos(), web.Generation, web.State(), web.Desired)
	// Output:
	// 3 killed false
	// 4 2 running true
}
