package state

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/solo-rt/solo/eventstore"
	"github.com/stretchr/testify/require"
)

func samplePayloads() []Payload {
	max := 2
	spec := testSpec("web")
	spec.Env = map[string]string{"A": "b"}
	spec.Dir = "/srv"
	spec.MaxRestarts = &max
	spec.Normalize()
	return []Payload{
		Deployed{Spec: spec, Generation: 3},
		Started{Generation: 3, Attempt: 2, PID: 1234, StartTicks: 98765, BootID: "b0b"},
		Ready{Generation: 3, Attempt: 2, PID: 1234, After: Duration(1500 * time.Millisecond)},
		Health{Generation: 3, Attempt: 2, PID: 1234, Healthy: false, Reason: "GET http://127.0.0.1:8080/: 500 Internal Server Error"},
		Exited{Generation: 3, PID: 1234, Attempt: 2, ExitCode: 0, Signal: "SIGKILL", RanFor: Duration(1500 * time.Millisecond), Unknown: true},
		Failed{Generation: 3, Restarts: 5, Window: Duration(time.Minute)},
		Killed{Reason: "operator"},
		Recovered{How: RecoveryReadopted, PID: 1234, DeployPos: 7, Generation: 3},
		RecoveryFailed{Reason: "exec: not found", DeployPos: 7},
		StartRequested{Generation: 3, Reason: "requested"},
		RestartRequested{Generation: 3, Reason: "requested"},
		Signalled{PID: 1234, Signal: "SIGHUP"},
		Removed{Reason: "requested"},
		Waiting{Generation: 1, For: []Blocker{{Name: "db", State: StateStarting}}, Reason: "required service db stopped"},
		Placed{Node: "n2", Lease: 7587, Reason: "node n1 is gone"},
		Placed{Node: "n9", Lease: 7587, Reason: "waiting for a node among n9", Waiting: []string{"n9"}},
		DriftFound{Kind: DriftIdentityMismatch, PID: 99, Detail: "start ticks differ"},
		DriftFixed{Kind: DriftRunningKilled, PID: 99, Action: "SIGKILL to group"},
		TokenGranted{ID: "tok_1", Tenant: "default", Scopes: []string{"deploy"}, Services: []string{"web"}, ExpiresAt: t0},
		TokenRevoked{ID: "tok_1"},
		SecretSet{Name: "db-password", Version: 2},
		SecretRemoved{Name: "db-password", Version: 2},
		TenantPolicySet{TenantPolicy{Users: []string{"nobody", "1001"}, Groups: []string{"web"}}},
		TenantUserAllocated{UID: 61200, GID: 61200},
		SystemStarted{Version: "v1.2.3", PID: 1, BootID: "b0b"},
		ShutdownStarted{Reason: "SIGTERM", Grace: Duration(10 * time.Second)},
		ShutdownComplete{ExitCode: 143, Stopped: 3, Forced: 1},
	}
}

func TestNewEvent_Decode(t *testing.T) {
	seen := map[EventType]bool{}
	for i, p := range samplePayloads() {
		t.Run(string(p.EventType()), func(t *testing.T) {
			seen[p.EventType()] = true
			ev, err := NewEvent("default", "web", p)
			require.NoError(t, err)
			require.Equal(t, string(p.EventType()), ev.Type)
			require.True(t, json.Valid(ev.Data))

			env := eventstore.Envelope{Pos: uint64(i + 1), Type: ev.Type, Tenant: ev.Tenant, Subject: ev.Subject, Data: ev.Data}
			got, err := Decode(env)
			require.NoError(t, err)
			require.Equal(t, p, got)

			// A pointer payload encodes the same.
			ev2, err := NewEvent("default", "web", pointerTo(p))
			require.NoError(t, err)
			require.Equal(t, ev, ev2)
		})
	}
	for typ := range newPayload {
		if _, ok := sessionPayloads[typ]; ok {
			continue // TestNewEvent_DecodeSession
		}
		require.True(t, seen[typ], "no sample for %s", typ)
		require.True(t, typ.Known())
	}
}

func pointerTo(p Payload) Payload {
	switch v := p.(type) {
	case Deployed:
		return &v
	case Started:
		return &v
	case Ready:
		return &v
	case Exited:
		return &v
	case Failed:
		return &v
	case Health:
		return &v
	case Killed:
		return &v
	case Recovered:
		return &v
	case RecoveryFailed:
		return &v
	case StartRequested:
		return &v
	case RestartRequested:
		return &v
	case Signalled:
		return &v
	case Waiting:
		return &v
	case Removed:
		return &v
	case Placed:
		return &v
	case DriftFound:
		return &v
	case DriftFixed:
		return &v
	case TokenGranted:
		return &v
	case TokenRevoked:
		return &v
	case SecretSet:
		return &v
	case SecretRemoved:
		return &v
	case TenantPolicySet:
		return &v
	case TenantUserAllocated:
		return &v
	case SystemStarted:
		return &v
	case ShutdownStarted:
		return &v
	case ShutdownComplete:
		return &v
	}
	panic("unknown payload")
}

func TestNewEvent(t *testing.T) {
	t.Run("deploy normalises and takes the key from the spec", func(t *testing.T) {
		ev, err := NewEvent("", "", Deployed{Spec: Spec{Name: "web", Command: []string{"/bin/true"}}, Generation: 1})
		require.NoError(t, err)
		require.Equal(t, "default", ev.Tenant)
		require.Equal(t, "web", ev.Subject)
		p, err := Decode(eventstore.Envelope{Pos: 1, Type: ev.Type, Data: ev.Data})
		require.NoError(t, err)
		require.Equal(t, RestartAlways, p.(Deployed).Spec.Restart)
		require.Equal(t, Duration(10*time.Second), p.(Deployed).Spec.StopTimeout)
	})
	for _, tc := range []struct {
		name            string
		tenant, subject string
		p               Payload
		want            error
	}{
		{"nil", "", "", nil, ErrInvalidEvent},
		{"nil pointer", "", "", (*Killed)(nil), ErrInvalidEvent},
		{"deploy key mismatch", "default", "api", Deployed{Spec: testSpec("web"), Generation: 1}, ErrInvalidEvent},
		{"deploy invalid spec", "", "", Deployed{Spec: Spec{Name: "Web", Command: []string{"x"}}, Generation: 1}, ErrInvalidSpec},
		{"deploy generation 0", "", "", Deployed{Spec: testSpec("web")}, ErrInvalidEvent},
		{"recovered bad how", "default", "web", Recovered{How: "magic"}, ErrInvalidEvent},
		{"drift bad kind", "", "", DriftFound{Kind: "weird"}, ErrInvalidEvent},
		{"drift fixed bad kind", "", "", &DriftFixed{Kind: "weird"}, ErrInvalidEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewEvent(tc.tenant, tc.subject, tc.p)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestDecode(t *testing.T) {
	t.Run("unknown type", func(t *testing.T) {
		_, err := Decode(eventstore.Envelope{Pos: 42, Type: "future_event", Data: json.RawMessage(`{}`)})
		require.ErrorIs(t, err, ErrUnknownType)
		require.ErrorContains(t, err, "42")
		var de *DecodeError
		require.ErrorAs(t, err, &de)
		require.Equal(t, uint64(42), de.Pos)
	})
	t.Run("bad JSON names pos and type", func(t *testing.T) {
		_, err := Decode(eventstore.Envelope{Pos: 7, Type: "service_started", Data: json.RawMessage(`{"pid":"abc"}`)})
		require.ErrorIs(t, err, ErrBadPayload)
		require.ErrorContains(t, err, "7")
		require.ErrorContains(t, err, "service_started")
	})
	t.Run("empty data is the zero payload", func(t *testing.T) {
		p, err := Decode(eventstore.Envelope{Pos: 1, Type: "service_killed"})
		require.NoError(t, err)
		require.Equal(t, Killed{}, p)
	})
	t.Run("unknown fields are ignored", func(t *testing.T) {
		p, err := Decode(eventstore.Envelope{Pos: 1, Type: "service_killed", Data: json.RawMessage(`{"reason":"x","future":1}`)})
		require.NoError(t, err)
		require.Equal(t, Killed{Reason: "x"}, p)
	})
}

// FuzzDecodeApply feeds arbitrary data under every type to Decode and
// Apply: neither may panic, and Apply either fails leaving the World as it
// was, or folds it.
func FuzzDecodeApply(f *testing.F) {
	types := []string{"unknown_type"}
	for typ := range newPayload {
		types = append(types, string(typ))
	}
	for i, p := range samplePayloads() {
		ev, err := NewEvent("default", "web", p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), []byte(ev.Data))
	}
	f.Add(uint8(0), []byte(`{"spec":{"name":"web","command":["x"],"max_restarts":-4,"restart_window":"-1h"},"generation":0}`))
	f.Add(uint8(1), []byte(`null`))
	f.Add(uint8(2), []byte(`{"pid":1e99}`))
	f.Add(uint8(0), []byte(`{"spec":{"name":"web","command":["x"],"config":{"a":[1,2,{"b":null}]}},"generation":1}`))

	f.Fuzz(func(t *testing.T, typ uint8, data []byte) {
		// A world with a deployed, started service for events to land on.
		l := newTestLog(t)
		l.deploy("web", 1)
		l.start("web", 1, 1, 1234)
		w, err := Fold(nil, l.seq(0))
		if err != nil {
			t.Fatal(err)
		}
		env := eventstore.Envelope{
			Pos: 3, Time: t0, Type: types[int(typ)%len(types)],
			Tenant: "default", Subject: "web", Data: data,
		}
		_, _ = Decode(env)
		before := w.Clone()
		if err := w.Apply(env); err != nil {
			if !equalWorlds(before, w) {
				t.Fatalf("failed Apply changed the world: %v", err)
			}
			return
		}
		for _, s := range w.Services() {
			_ = s.State()
			_ = s.View()
		}
		if b, err := w.MarshalSnapshot(); err == nil {
			back, err := UnmarshalSnapshot(b)
			if err != nil {
				t.Fatalf("snapshot does not read back: %v", err)
			}
			if !equalWorlds(w, back) {
				t.Fatalf("snapshot round trip differs for %s %q", env.Type, data)
			}
		}
	})
}

func equalWorlds(a, b *World) bool { return reflect.DeepEqual(a, b) }
