package state

import (
	"fmt"
	"slices"
	"strings"
)

// MaxDeps bounds the names in a spec's after and in its requires.
const MaxDeps = 64

// Deps returns the services s starts after: its after and its requires
// (requires implies after), each name once, in the order written.
func (s Spec) Deps() []string {
	if len(s.Requires) == 0 {
		return s.After
	}
	out := slices.Clone(s.After)
	for _, n := range s.Requires {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// dependsOn reports whether s starts after name.
func (s Spec) dependsOn(name string) bool {
	return slices.Contains(s.After, name) || slices.Contains(s.Requires, name)
}

// checkDeps is the part of [Spec.Validate] that one spec decides alone.
func checkDeps(s Spec) (field, problem string) {
	for _, l := range []struct {
		field string
		names []string
	}{{"after", s.After}, {"requires", s.Requires}} {
		if len(l.names) > MaxDeps {
			return l.field, fmt.Sprintf("has %d names, limit %d", len(l.names), MaxDeps)
		}
		for i, n := range l.names {
			if p := nameProblem(n); p != "" {
				return l.field, fmt.Sprintf("name %q %s", n, p)
			}
			if n == s.Name {
				return l.field, fmt.Sprintf("names the service itself (%s); a service cannot wait for itself", n)
			}
			if slices.Contains(l.names[:i], n) {
				return l.field, fmt.Sprintf("names %s twice", n)
			}
		}
	}
	return "", ""
}

// CheckOrder is the one check of the dependencies between the services of
// one tenant, for deploy and apply alike, before anything is written:
// specs are the tenant's services as they would be after the write (name
// to spec), and changed the names the write deploys. Each name a changed
// spec's after or requires lists must be in specs, and no chain of
// dependencies may come back to where it began. The error is a
// [*FieldError] naming the field (after or requires) and the missing name
// or the cycle ("a -> b -> c -> a").
func CheckOrder(specs map[string]Spec, changed []string) error {
	for _, name := range changed {
		s := specs[name]
		for _, l := range []struct {
			field string
			names []string
		}{{"after", s.After}, {"requires", s.Requires}} {
			for _, d := range l.names {
				if _, ok := specs[d]; !ok {
					return &FieldError{Field: l.field, Problem: fmt.Sprintf("names %s, which is not a service of tenant %q (deploy it first, or in the same apply)", d, s.Tenant)}
				}
			}
		}
	}
	// Depth-first from each changed service: a name met again while it is
	// on the path closes a cycle. done holds names whose every chain is
	// known to end.
	done := map[string]bool{}
	var path []string
	onPath := map[string]bool{}
	var visit func(name string) []string
	visit = func(name string) []string {
		if done[name] {
			return nil
		}
		if onPath[name] {
			i := slices.Index(path, name)
			return append(slices.Clone(path[i:]), name)
		}
		s, ok := specs[name]
		if !ok {
			return nil // not in the tenant: reported above for a changed spec
		}
		onPath[name] = true
		path = append(path, name)
		for _, d := range s.Deps() {
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		delete(onPath, name)
		done[name] = true
		return nil
	}
	for _, name := range changed {
		if c := visit(name); c != nil {
			field := "after"
			if from := specs[c[0]]; slices.Contains(from.Requires, c[1]) && !slices.Contains(from.After, c[1]) {
				field = "requires"
			}
			return &FieldError{Field: field, Problem: fmt.Sprintf("makes a cycle: %s; a service cannot wait for itself, remove one of these dependencies", strings.Join(c, " -> "))}
		}
	}
	return nil
}

// Blocker is a service another one waits for, and its state then.
type Blocker struct {
	Name  string `json:"name"`
	State State  `json:"state"`
}

// StateAbsent is the state of a [Blocker] that is not deployed in the tenant.
const StateAbsent State = "absent"

// DescribeBlockers says what a service waits for: "db (starting), cache
// (backoff)".
func DescribeBlockers(bs []Blocker) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = fmt.Sprintf("%s (%s)", b.Name, b.State)
	}
	return strings.Join(parts, ", ")
}

// Blockers is the one rule of whether svc may start now: it returns the
// services of its tenant it waits for, none if it may start.
//
//   - A service it requires must be desired, run and be ready
//     ([Service.IsReady]);
//     one that is absent, stopped, failed or exited blocks it until it is.
//   - A service it is only after blocks it while it is coming up: it
//     should run ([Service.ShouldRun]) and is not ready yet. One that is
//     stopped, failed, or ended as its policy wanted (a one-shot job that
//     finished) does not hold it back, as with systemd's After=.
func (w *World) Blockers(svc *Service) []Blocker {
	var out []Blocker
	for _, name := range svc.Spec.Deps() {
		dep, ok := w.services[Key{Tenant: svc.Tenant, Name: name}]
		switch {
		case !ok:
			if slices.Contains(svc.Spec.Requires, name) {
				out = append(out, Blocker{Name: name, State: StateAbsent})
			}
		case dep.Desired && dep.IsReady():
			// Ready, and not on its way down (a kill is recorded
			// before its instance stops).
		case slices.Contains(svc.Spec.Requires, name) || dep.ShouldRun():
			out = append(out, Blocker{Name: name, State: dep.State()})
		}
	}
	return out
}

// RequiredDown returns the first service svc requires that has no live
// instance (stopped, removed, exited, in backoff, failed), and whether
// there is one: what stops a running dependent. A required service that
// runs but is not ready yet (starting) does not stop it.
func (w *World) RequiredDown(svc *Service) (Blocker, bool) {
	for _, name := range svc.Spec.Requires {
		dep, ok := w.services[Key{Tenant: svc.Tenant, Name: name}]
		if !ok {
			return Blocker{Name: name, State: StateAbsent}, true
		}
		if in := dep.Instance; !dep.Desired || in == nil || in.Exited {
			return Blocker{Name: name, State: dep.State()}, true
		}
	}
	return Blocker{}, false
}

// Dependents returns the names of the services of tenant that are after
// or require name, sorted.
func (w *World) Dependents(tenant, name string) []string {
	var out []string
	for k, s := range w.services {
		if k.Tenant == tenant && s.Spec.dependsOn(name) {
			out = append(out, k.Name)
		}
	}
	slices.Sort(out)
	return out
}

// StopWaves orders keys (the services a drain stops) in waves: every
// service of a wave is stopped after all its dependents among keys, in the
// waves before it, and the services of one wave are independent of each
// other. A world where no service of keys has a dependent among them gives
// one wave.
func (w *World) StopWaves(keys []Key) [][]Key {
	// level is 0 for a service no other of keys depends on, else one more
	// than its dependents' highest.
	level := make(map[Key]int, len(keys))
	var depth func(k Key, seen int) int
	depth = func(k Key, seen int) int {
		if l, ok := level[k]; ok {
			return l
		}
		l := 0
		if seen <= len(keys) { // a cycle cannot pass validation; never loop on one
			for _, d := range keys {
				if s, ok := w.services[d]; ok && d.Tenant == k.Tenant && s.Spec.dependsOn(k.Name) {
					l = max(l, depth(d, seen+1)+1)
				}
			}
		}
		level[k] = l
		return l
	}
	most := 0
	hasDeps := false
	for _, k := range keys {
		if s, ok := w.services[k]; ok && len(s.Spec.Deps()) > 0 {
			hasDeps = true
			break
		}
	}
	if !hasDeps {
		return [][]Key{keys}
	}
	for _, k := range keys {
		most = max(most, depth(k, 0))
	}
	waves := make([][]Key, most+1)
	for _, k := range keys {
		waves[level[k]] = append(waves[level[k]], k)
	}
	return waves
}
