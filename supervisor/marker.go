package supervisor

import (
	"fmt"
	"strconv"
	"strings"
)

// MarkerEnv is the environment variable that marks every process Solo
// starts, with the value of a [Marker]: after a crash of the daemon, the
// processes it started can be found in /proc ([ReadEnvVar]) and told from
// strangers even before their start was recorded.
const MarkerEnv = "SOLO_SERVICE"

// Marker is what a process's [MarkerEnv] variable says about it: which Solo
// installation started it (Home, its data directory, so that two daemons
// on one host never take each other's children), for which service, and
// which generation and attempt it is.
//
// [ProcessRunner] writes it and [ParseMarker] reads it; nothing else knows
// its form, "home|tenant|name|generation|attempt". That form is kept
// across versions: a daemon must recognise the processes an older one
// started.
type Marker struct {
	Home       string
	Tenant     string
	Name       string
	Generation uint64
	Attempt    int
}

// String returns the value of [MarkerEnv] for m.
func (m Marker) String() string {
	return fmt.Sprintf("%s|%s|%s|%d|%d", m.Home, m.Tenant, m.Name, m.Generation, m.Attempt)
}

// env returns the child's "MarkerEnv=value" for attempt: [Marker.String]
// with Attempt set, built by concatenation. A start runs it for every
// attempt of every service, and fmt's deeper stack there was enough to
// raise the size the runtime gives the goroutines of a 1,000-service burst,
// and so the stack every service loop then keeps while it waits (about 3
// KiB per service; see BenchmarkRuntime_Apply1000). TestMarker_env keeps
// the two forms equal.
func (m *Marker) env(attempt int) string {
	return MarkerEnv + "=" + m.Home + "|" + m.Tenant + "|" + m.Name + "|" +
		strconv.FormatUint(m.Generation, 10) + "|" + strconv.Itoa(attempt)
}

// ParseMarker reads a value of [MarkerEnv]. The home may itself hold '|',
// so the fields are taken from the right. It checks the form (every field
// set, generation and attempt from 1), not whether the tenant and name
// are valid service names, which is its caller's rule.
func ParseMarker(s string) (Marker, error) {
	parts := strings.Split(s, "|")
	if len(parts) < 5 {
		return Marker{}, fmt.Errorf("%w: %q has fewer than 5 fields", ErrNotMarker, s)
	}
	n := len(parts)
	gen, err := strconv.ParseUint(parts[n-2], 10, 64)
	if err != nil {
		return Marker{}, fmt.Errorf("%w: generation: %w", ErrNotMarker, err)
	}
	attempt, err := strconv.Atoi(parts[n-1])
	if err != nil {
		return Marker{}, fmt.Errorf("%w: attempt: %w", ErrNotMarker, err)
	}
	m := Marker{Home: strings.Join(parts[:n-4], "|"), Tenant: parts[n-4], Name: parts[n-3], Generation: gen, Attempt: attempt}
	if m.Home == "" || m.Tenant == "" || m.Name == "" || gen == 0 || attempt < 1 {
		return Marker{}, fmt.Errorf("%w: %q", ErrNotMarker, s)
	}
	return m, nil
}
