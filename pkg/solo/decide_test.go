package solo

import (
	"sync"
	"testing"
	"time"

	"github.com/solo-rt/solo/pkg/state"
)

func TestIsUnchanged(t *testing.T) {
	spec := state.Spec{Tenant: "default", Name: "web", Command: []string{"sleep", "1000"}}
	spec.Normalize()
	never := spec.Clone()
	never.Restart = state.RestartNever
	other := spec.Clone()
	other.Command = []string{"sleep", "2000"}
	running := func(gen uint64) *state.Instance { return &state.Instance{Generation: gen, Attempt: 1, PID: 42} }
	exited := func(gen uint64, code int) *state.Instance {
		return &state.Instance{Generation: gen, Attempt: 1, PID: 42, Exited: true, ExitCode: code}
	}
	svc := func(s state.Spec, desired bool, in *state.Instance) *state.Service {
		return &state.Service{Tenant: "default", Name: "web", Spec: s, Generation: 2, Desired: desired, Killed: !desired, Instance: in}
	}
	failed := svc(spec, true, exited(2, 1))
	failed.Failed = true
	cases := []struct {
		name       string
		cur        *state.Service
		spec       state.Spec
		supervised bool
		want       bool
	}{
		{"same spec, running, in hand", svc(spec, true, running(2)), spec, true, true},
		{"same spec, running, no loop has it", svc(spec, true, running(2)), spec, false, false},
		{"same spec, starting, in hand", svc(spec, true, nil), spec, true, true},
		{"same spec, backoff, in hand", svc(spec, true, exited(2, 1)), spec, true, true},
		{"changed spec", svc(spec, true, running(2)), other, true, false},
		{"killed: deploy again", svc(spec, false, exited(2, 0)), spec, true, false},
		{"failed: deploy again brings it back", failed, spec, true, false},
		{"a one-shot that finished stays finished", svc(never, true, exited(2, 0)), never, false, true},
		{"an older generation's instance", svc(spec, true, running(1)), spec, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := isUnchanged(c.cur, c.spec, func(state.Key) bool { return c.supervised })
			if got != c.want {
				t.Fatalf("isUnchanged = %v, want %v (state %s)", got, c.want, c.cur.State())
			}
		})
	}
}

// TestKeyedMutex_LockAll takes overlapping key sets in opposite orders and
// with repeats from many goroutines: lockAll must neither deadlock nor let
// two holders of one key in at once.
func TestKeyedMutex_LockAll(t *testing.T) {
	var k keyedMutex
	a := state.Key{Tenant: "default", Name: "a"}
	b := state.Key{Tenant: "default", Name: "b"}
	c := state.Key{Tenant: "other", Name: "a"}
	sets := [][]state.Key{{a, b}, {b, a}, {c, a, a}, {b, c}, {a}}
	held := map[state.Key]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			keys := sets[i%len(sets)]
			unlock := k.lockAll(keys)
			mu.Lock()
			for _, key := range keys {
				if held[key]++; held[key] > 1 && !repeated(keys, key) {
					t.Errorf("%v held twice", key)
				}
			}
			mu.Unlock()
			mu.Lock()
			for _, key := range keys {
				held[key]--
			}
			mu.Unlock()
			unlock()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("lockAll deadlocked")
	}
	if len(k.m) != 0 {
		t.Fatalf("%d locks left in the map", len(k.m))
	}
}

func repeated(keys []state.Key, key state.Key) bool {
	n := 0
	for _, k := range keys {
		if k == key {
			n++
		}
	}
	return n > 1
}
