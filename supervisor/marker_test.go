package supervisor

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMarker_roundTrip(t *testing.T) {
	cases := []struct {
		name   string
		marker Marker
		value  string // what a child's environment holds; running processes carry it across versions
	}{
		{"plain", Marker{Home: "/var/lib/solo", Tenant: "default", Name: "web", Generation: 3, Attempt: 7}, "/var/lib/solo|default|web|3|7"},
		{"a home with '|' in it", Marker{Home: "/data/a|b", Tenant: "t", Name: "n", Generation: 1, Attempt: 1}, "/data/a|b|t|n|1|1"},
		{"a home that is all '|'", Marker{Home: "||", Tenant: "t", Name: "n", Generation: 1, Attempt: 1}, "|||t|n|1|1"},
		{"names with dots, dashes and underscores", Marker{Home: "/h", Tenant: "team-a", Name: "web.v2_x", Generation: 12, Attempt: 40}, "/h|team-a|web.v2_x|12|40"},
		{"the largest numbers", Marker{Home: "/h", Tenant: "t", Name: "n", Generation: math.MaxUint64, Attempt: math.MaxInt}, "/h|t|n|18446744073709551615|9223372036854775807"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.value, c.marker.String())
			got, err := ParseMarker(c.value)
			require.NoError(t, err)
			assert.Equal(t, c.marker, got)
		})
	}
}

func TestParseMarker(t *testing.T) {
	for _, bad := range []string{
		"",
		"x",
		"default/web",                   // another format
		"t|n|1|1",                       // four fields: no home
		"|t|n|1|1",                      // empty home
		"/h||n|1|1",                     // empty tenant
		"/h|t||1|1",                     // empty name
		"/h|t|n|0|1",                    // generations count from 1
		"/h|t|n|1|0",                    // attempts count from 1
		"/h|t|n|-1|1",                   // negative generation
		"/h|t|n|1|-1",                   // negative attempt
		"/h|t|n|x|1",                    // not a number
		"/h|t|n|1|1 ",                   // trailing space
		"/h|t|n|1|99999999999999999999", // overflow
	} {
		t.Run(bad, func(t *testing.T) {
			m, err := ParseMarker(bad)
			assert.ErrorIs(t, err, ErrNotMarker)
			assert.Equal(t, Marker{}, m)
		})
	}
}

// A ProcessRunner marks each process with its marker, the attempt's number
// filled in; without a Home it marks nothing.
func TestProcessRunner_Marker(t *testing.T) {
	logs := mustNewLogs(t, LogOptions{})
	marker := Marker{Home: "/data/x", Tenant: "default", Name: "web", Generation: 2}
	for _, c := range []struct {
		name   string
		marker Marker
		want   string
	}{
		{"marked", marker, "/data/x|default|web|2|5"},
		{"unmarked", Marker{}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &ProcessRunner{Argv: []string{"/usr/bin/sleep", "3600"}, Env: []string{"A=1"}, Logs: logs, LogKey: "default/web", Marker: c.marker}
			inst, err := r.Start(context.Background(), 5)
			require.NoError(t, err)
			t.Cleanup(func() {
				ctx, cancel := context.WithCancel(context.Background())
				cancel() // force now
				_, err := inst.Stop(ctx, 0, time.Second)
				assert.NoError(t, err)
			})
			v, ok, err := ReadEnvVar(inst.Identity().PID, MarkerEnv)
			require.NoError(t, err)
			assert.Equal(t, c.want != "", ok)
			assert.Equal(t, c.want, v)
			if ok {
				m, err := ParseMarker(v)
				require.NoError(t, err)
				want := c.marker
				want.Attempt = 5
				assert.Equal(t, want, m)
			}
		})
	}
}

// The marker a start writes is the marker String writes, for any attempt.
func TestMarker_env(t *testing.T) {
	for _, m := range []Marker{
		{Home: "/var/lib/solo", Tenant: "default", Name: "web", Generation: 1},
		{Home: "/data/a|b", Tenant: "acme", Name: "api.v2", Generation: 18446744073709551615},
	} {
		for _, attempt := range []int{1, 7, 1 << 30} {
			want := m
			want.Attempt = attempt
			if got := m.env(attempt); got != MarkerEnv+"="+want.String() {
				t.Errorf("env(%d) = %q, want %q", attempt, got, MarkerEnv+"="+want.String())
			}
		}
	}
}
