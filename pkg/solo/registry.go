package solo

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// GoService is an in-process service. Serve runs until ctx ends (then it
// returns nil or ctx.Err()) or until it fails (an error, or a panic, which
// the runtime catches); a failure counts like a non-zero exit.
type GoService = supervisor.GoService

// Factory builds an in-process service from the JSON config of its spec.
// It is called once per attempt, so each restart gets a fresh service.
// log is the service's log file, the same one `solo logs` reads.
type Factory func(config json.RawMessage, log io.Writer) (GoService, error)

// Registry maps kinds to factories. The zero value is not usable; use
// [NewRegistry]. It is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]Factory{}} }

// Register adds a kind. Kinds follow the rule of service names. It fails if
// the kind is invalid or taken.
func (r *Registry) Register(kind string, f Factory) error {
	if err := state.ValidName(kind); err != nil {
		return fmt.Errorf("register kind: %w", err)
	}
	if f == nil {
		return fmt.Errorf("register kind %q: nil factory", kind)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[kind]; dup {
		return fmt.Errorf("register kind %q: already registered", kind)
	}
	r.m[kind] = f
	return nil
}

// Lookup returns the factory of kind.
func (r *Registry) Lookup(kind string) (Factory, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.m[kind]
	return f, ok
}

// Kinds lists the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.m))
	for k := range r.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var defaultRegistry = NewRegistry()

// Register adds a kind to the default registry, which [Open] uses when
// [Options.Registry] is nil. Like database/sql's Register it is meant for
// init functions, and panics if the kind is invalid or already taken.
func Register(kind string, f Factory) {
	if err := defaultRegistry.Register(kind, f); err != nil {
		panic(err)
	}
}

// kind is the one check that an in-process kind can run here: "" (an OS
// process) always can; any other kind must be registered. The error wraps
// [ErrUnknownKind] and lists the kinds that are.
func (r *Runtime) kind(kind string) (Factory, error) {
	if kind == "" {
		return nil, nil
	}
	f, ok := r.opts.Registry.Lookup(kind)
	if !ok {
		return nil, fmt.Errorf("%w: %q (registered: %v)", ErrUnknownKind, kind, r.opts.Registry.Kinds())
	}
	return f, nil
}

// canStamp refuses a spec that asks for timestamps from a runtime without
// a log stamper, naming the field. Deploy and Apply both ask it.
func (r *Runtime) canStamp(spec Spec) error {
	if spec.Log.Stamped() && len(r.opts.Stamper) == 0 {
		return &state.FieldError{Field: "log.timestamps", Problem: "this runtime has no log stamper (Options.Stamper); the solo daemon has one"}
	}
	return nil
}

// canContain refuses a spec that asks for limits from a runtime that makes
// no cgroups, naming the field and why. Deploy and Apply both ask it.
func (r *Runtime) canContain(spec Spec) error {
	if !spec.HasLimits() || r.cg.Available() {
		return nil
	}
	return &state.FieldError{Field: spec.LimitField(), Problem: fmt.Sprintf("limits need cgroups, and this daemon has none (%v); run it as root on a host with the memory, cpu and pids controllers, or deploy without limits", r.cg.Reason())}
}
