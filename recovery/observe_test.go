package recovery

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// A marked process is ours only if its marker names this installation and
// a tenant and name a service can have; the marker's form is the
// supervisor's (see its ParseMarker test).
func TestOurs(t *testing.T) {
	m := supervisor.Marker{Home: "/data/a|b", Tenant: "default", Name: "web.1", Generation: 3, Attempt: 7}
	assert.True(t, ours(m, "/data/a|b"))
	for _, c := range []struct {
		name string
		edit func(*supervisor.Marker)
	}{
		{"another installation", func(m *supervisor.Marker) { m.Home = "/data/a" }},
		{"a tenant no service can have", func(m *supervisor.Marker) { m.Tenant = "T" }},
		{"a name no service can have", func(m *supervisor.Marker) { m.Name = "-web" }},
	} {
		bad := m
		c.edit(&bad)
		assert.False(t, ours(bad, "/data/a|b"), c.name)
	}
}

func TestRecordedIdentity(t *testing.T) {
	in := &state.Instance{Generation: 2, Attempt: 3, PID: 4242, StartTicks: 987654, BootID: "b00t", StartPos: 9}
	assert.Equal(t, supervisor.Identity{PID: 4242, StartTicks: 987654, BootID: "b00t"}, RecordedIdentity(in))
}
