package solo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/session"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// ErrApplyTooLarge is returned by [Runtime.Apply] when the events of one
// apply (its deploys plus its prune kills) exceed what one append of the
// event store may hold ([eventstore.Options.MaxAppend], default
// [eventstore.DefaultMaxAppend]; on etcd, the store's Txn limit). An apply
// is one atomic append, so it is refused whole rather than split: nothing
// is written. Split the file (by tenant, say) or raise the limit.
var ErrApplyTooLarge = errors.New("apply has more events than one atomic append allows")

// ErrApplyEmpty is returned by [DecodeApplyFile] for a file that names no
// service (it is empty, or every document of it is), and by
// [Runtime.Apply] for a prune that names none. Such a file is almost
// always the wrong one, and a prune from it cannot tell which tenants it
// means: it is refused, and nothing is written.
var ErrApplyEmpty = errors.New("no services to apply")

// ErrReservedName is returned, in an [*ApplyEntryError], by
// [Runtime.Apply] for an entry whose name belongs to a kernel session (see
// [session.IsService]): those services are the sessions' to deploy and
// kill, never a file's. Nothing is written.
var ErrReservedName = errors.New("name is reserved for kernel sessions")

// ErrApplyAmbiguous is returned, in an [*ApplyEntryError], by
// [Runtime.Apply] for an entry that reads as a mistake the apply would
// act on destructively: a prune that kills (T, NAME) while the file
// creates NAME in a tenant that has no service yet, as a misspelt tenant
// does. Nothing is written; apply without prune first to create the
// tenant on purpose.
var ErrApplyAmbiguous = errors.New("apply is ambiguous")

// The request and result of an apply are what the API sends: they are
// defined once, in package wire, and named here too.
type (
	// ApplyAction is what an apply does to one service: see
	// [wire.ApplyAction].
	ApplyAction = wire.ApplyAction
	// ApplyRequest is a declarative set of services, as `solo apply -f
	// FILE` sends it: see [wire.ApplyRequest].
	ApplyRequest = wire.ApplyRequest
	// ApplyItem is the plan, and after a real apply the outcome, for one
	// service: see [wire.ApplyItem].
	ApplyItem = wire.ApplyItem
	// ApplyResult is what an apply planned and did: see [wire.ApplyResult].
	ApplyResult = wire.ApplyResult
)

// Apply actions.
const (
	ApplyCreate    = wire.ApplyCreate    // first deploy of the name (or first since it was killed)
	ApplyUpdate    = wire.ApplyUpdate    // the spec changed, or the service failed: redeployed as a new generation
	ApplyUnchanged = wire.ApplyUnchanged // the same spec is deployed: nothing written, nothing touched
	ApplyPrune     = wire.ApplyPrune     // desired, in one of the file's tenants, not named by the file: killed
)

// ApplyEntryError names the entry of an [ApplyRequest] that was refused, by
// its index in Services, and wraps why: usually a [*state.FieldError], so
// that errors.Is(err, state.ErrInvalidSpec) holds. Its text reads
// `services[3].command: is empty; ...`.
type ApplyEntryError struct {
	// Index is the entry's index in [ApplyRequest.Services]: in a file of
	// several documents, entries are counted across them, in file order.
	Index int
	// Document is the entry's YAML document (from 1) when
	// [DecodeApplyFile] refused it in a file of several; 0 otherwise.
	Document int
	Err      error
}

func (e *ApplyEntryError) Error() string {
	doc := ""
	if e.Document > 0 {
		doc = fmt.Sprintf("document %d: ", e.Document)
	}
	var fe *state.FieldError
	if errors.As(e.Err, &fe) {
		return fmt.Sprintf("%sservices[%d].%s: %s", doc, e.Index, fe.Field, fe.Problem)
	}
	return fmt.Sprintf("%sservices[%d]: %v", doc, e.Index, e.Err)
}

func (e *ApplyEntryError) Unwrap() error { return e.Err }

// Field returns the path of the field at fault, such as "services[3].command",
// or "services[3]" when no field is known.
func (e *ApplyEntryError) Field() string {
	var fe *state.FieldError
	if errors.As(e.Err, &fe) {
		return fmt.Sprintf("services[%d].%s", e.Index, fe.Field)
	}
	return fmt.Sprintf("services[%d]", e.Index)
}

// applyWorkers bounds how many services an apply hands to the supervisor at
// once. A hand-over stops the old generation (if any) first, which may take
// up to its stop timeout, so the hand-overs run in parallel; the starts
// themselves run on each service's own loop.
func applyWorkers() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// Apply makes the services of req the desired state, declaratively:
//
//   - It validates every entry first. A bad entry fails the whole apply
//     with an [*ApplyEntryError] naming its index and field (a command
//     that cannot start here included: the check Deploy makes); a (tenant,
//     name) named twice, an unregistered kind, or a name that belongs to a
//     kernel session ([ErrReservedName]), too. A prune with no services
//     fails with [ErrApplyEmpty]. Nothing is written (I9).
//   - It plans each service: create, update (the spec differs from the
//     deployed one, or the same spec failed: a new generation), unchanged
//     (the one rule Deploy also follows, [Runtime.unchanged]: nothing is
//     written and the instance is not touched), and
//     with Prune, prune for every desired service of the file's tenants
//     that the file does not name, except the kernel sessions' services
//     ([session.IsService]), which are never a file's.
//   - A prune that kills (T, NAME) while the file creates NAME in a tenant
//     with no service yet reads as a misspelt tenant: it fails with an
//     [*ApplyEntryError] wrapping [ErrApplyAmbiguous], before anything is
//     written. Applied without prune, the same file creates the tenant.
//   - With DryRun it returns the plan.
//   - Otherwise it appends every service_deployed and service_killed of
//     the plan in ONE [eventstore.Store.Append]: all are durable or none
//     (I1, I2). More events than the store's batch limit fail with
//     [ErrApplyTooLarge] before anything is written.
//   - Then it acts, on bounded parallel workers: pruned services are
//     stopped, updated ones have their old generation stopped, and new
//     generations are handed to the supervisor, whose loops start them
//     concurrently.
//
// Apply returns once every service of the plan has been handed over (or
// stopped, for a prune); it does not wait for the starts, which the log
// records as service_started. Applying the same request again is a no-op
// that writes nothing. Concurrent applies, deploys and kills of the same
// services are serialised per service.
func (r *Runtime) Apply(ctx context.Context, req ApplyRequest) (ApplyResult, error) {
	if !req.DryRun {
		if err := r.writable(); err != nil {
			return ApplyResult{}, err
		}
	} else if r.closed.Load() {
		return ApplyResult{}, ErrClosed
	}
	specs, dynamic, err := r.validateApply(ctx, req.Services)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply: %w", err)
	}
	if req.Prune && len(specs) == 0 {
		// With no entry there is no tenant to prune: the caller meant
		// "everything" or passed the wrong file. Neither is done silently.
		return ApplyResult{}, fmt.Errorf("apply: %w: a prune needs the services to keep (is it the right file?)", ErrApplyEmpty)
	}
	tenants := map[string]bool{}
	named := make(map[state.Key]bool, len(specs))
	for _, s := range specs {
		tenants[s.Tenant] = true
		named[s.Key()] = true
	}

	// Lock every service the apply may touch, in one order so that two
	// applies never deadlock. The prune candidates are read before the
	// locks; a service deployed in between is newer than this apply and
	// is left alone.
	keys := make([]state.Key, 0, len(specs))
	for _, s := range specs {
		keys = append(keys, s.Key())
	}
	if req.Prune {
		for _, k := range r.world.desiredIn(tenants) {
			if !named[k] {
				keys = append(keys, k)
			}
		}
	}
	slices.SortFunc(keys, compareKeys)
	unlock := r.keys.lockAll(keys)
	defer unlock()

	// Plan, under the locks.
	plan := ApplyResult{DryRun: req.DryRun, Items: make([]ApplyItem, 0, len(keys))}
	var events []eventstore.Event
	actor := actorFrom(ctx)
	next := r.world.nextGenerations(keys)
	creates := map[string]int{} // new services, by tenant: what the quotas count
	for _, s := range specs {
		key := s.Key()
		it := ApplyItem{Tenant: key.Tenant, Name: key.Name}
		cur, ok := r.world.service(key.Tenant, key.Name)
		if !ok {
			creates[key.Tenant]++
		}
		switch {
		case ok && r.unchanged(cur, s):
			it.Action, it.Generation, it.State = ApplyUnchanged, cur.Generation, cur.State()
		case ok && cur.Desired:
			it.Action, it.Generation, it.State = ApplyUpdate, next[key], cur.State()
		default:
			it.Action, it.Generation = ApplyCreate, next[key]
			if ok {
				it.State = cur.State()
			}
		}
		if it.Action != ApplyUnchanged {
			ev, err := state.NewEvent(key.Tenant, key.Name, state.Deployed{Spec: s, Generation: it.Generation})
			if err != nil {
				return ApplyResult{}, fmt.Errorf("apply %s: %w", key, err)
			}
			ev.Actor = actor
			events = append(events, ev)
		}
		plan.Items = append(plan.Items, it)
	}
	if req.Prune {
		for _, key := range keys {
			if named[key] {
				continue
			}
			cur, ok := r.world.service(key.Tenant, key.Name)
			if !ok || !cur.Desired {
				continue // killed meanwhile
			}
			plan.Items = append(plan.Items, ApplyItem{Tenant: key.Tenant, Name: key.Name, Action: ApplyPrune, Generation: cur.Generation, State: cur.State()})
			ev, err := state.NewEvent(key.Tenant, key.Name, state.Killed{Reason: "pruned by apply"})
			if err != nil {
				return ApplyResult{}, fmt.Errorf("apply: prune %s: %w", key, err)
			}
			ev.Actor = actor
			events = append(events, ev)
		}
	}
	if req.Prune {
		if err := r.refuseTenantTypos(specs, plan.Items); err != nil {
			return ApplyResult{}, fmt.Errorf("apply: %w", err)
		}
	}
	if limit := r.maxAppend(); len(events) > limit {
		return ApplyResult{}, fmt.Errorf("apply: %w: %d events (deploys and prunes), limit %d; split the file into smaller ones (by tenant, so that --prune of one never removes another's services)", ErrApplyTooLarge, len(events), limit)
	}
	// Over a quota, the whole apply is refused (a dry run says so too).
	admitted, err := r.admit(ctx, state.QuotaServices, creates)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply: %w", err)
	}
	defer admitted()
	if req.DryRun || len(events) == 0 {
		return plan, nil
	}

	// The dynamic users the deploys need are recorded before them.
	for _, t := range dynamic {
		if _, err := r.allocateDynamicUser(ctx, t); err != nil {
			return ApplyResult{}, fmt.Errorf("apply: %w", err)
		}
	}
	// One append: every intent durable, or none.
	pos, err := r.store.Append(ctx, events...)
	r.observeCommit(err)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply: %w", err)
	}
	plan.FirstPos, plan.LastPos = pos[0], pos[len(pos)-1]
	// Durable: whatever the caller does now, the effects must follow.
	ctx = context.WithoutCancel(ctx)
	err = r.world.wait(ctx, plan.LastPos)
	admitted() // folded: the next check counts them
	if err != nil {
		return plan, fmt.Errorf("apply: %w", err)
	}
	j := 0
	for i := range plan.Items {
		if plan.Items[i].Action != ApplyUnchanged {
			plan.Items[i].Pos = pos[j]
			j++
		}
	}

	// The intents are durable; now act, in parallel.
	if r.opts.ReleaseMemoryAfterApply && len(events) >= releaseAfter {
		go r.releaseMemoryAfterStarts(plan)
	}
	if err := r.actApply(ctx, plan.Items); err != nil {
		return plan, fmt.Errorf("apply: %w", err)
	}
	return plan, nil
}

// releaseAfter is the size of an apply (in events) from which the memory
// of its burst is handed back to the OS once its services have started,
// with [Options.ReleaseMemoryAfterApply].
const releaseAfter = 64

// releaseMemoryAfterStarts waits until every service the apply created or
// updated has recorded its start (or 2 minutes pass, or the runtime
// closes), then returns the memory freed since to the OS.
//
// A large apply is a burst: decoding the request, the events, a thousand
// forks and their records leave the heap much larger than what stays
// live. Go keeps freed memory for reuse and returns it only slowly, so
// without this a daemon that started 1,000 services would sit on several
// MiB of garbage's pages for minutes. Two forced GCs after the burst are
// cheap (milliseconds) against that.
func (r *Runtime) releaseMemoryAfterStarts(plan ApplyResult) {
	pending := map[state.Key]bool{}
	for _, it := range plan.Items {
		if it.Action == ApplyCreate || it.Action == ApplyUpdate {
			pending[state.Key{Tenant: it.Tenant, Name: it.Name}] = true
		}
	}
	ctx, cancel := context.WithTimeout(r.force, 2*time.Minute)
	defer cancel()
	sub := r.store.Subscribe(ctx, plan.LastPos+1)
	for env := range sub.C() {
		if env.Type == string(state.TypeServiceStarted) || env.Type == string(state.TypeServiceExited) {
			delete(pending, state.Key{Tenant: env.Tenant, Name: env.Subject})
		}
		if len(pending) == 0 {
			break
		}
	}
	if r.closed.Load() {
		return
	}
	// A GC shrinks each goroutine stack that uses under a quarter of its
	// size by half, at most once per GC: the service loops born during the
	// burst, when the average stack was deep, need two to settle. The
	// second, FreeOSMemory's own, also hands the free pages back.
	runtime.GC()
	debug.FreeOSMemory()
}

// validateApply normalises and checks every entry; see [Runtime.Apply].
// It also returns the tenants whose dynamic user the specs need and that
// is not yet recorded.
func (r *Runtime) validateApply(ctx context.Context, in []Spec) ([]Spec, []string, error) {
	specs := make([]Spec, len(in))
	var dynamic []string
	confined := map[string]*confinement{}
	seen := make(map[state.Key]int, len(in))
	for i, s := range in {
		s = s.Clone()
		s.Normalize()
		if err := s.Validate(); err != nil {
			return nil, nil, &ApplyEntryError{Index: i, Err: err}
		}
		if session.IsService(s.Name) {
			return nil, nil, &ApplyEntryError{Index: i, Err: fmt.Errorf("%w: %w", &state.FieldError{
				Field: "name", Problem: fmt.Sprintf("%q belongs to a kernel session (names starting %q are the sessions'); use `solo session` for kernels, another name for a service", s.Name, session.ServicePrefix),
			}, ErrReservedName)}
		}
		if _, err := r.kind(s.Kind); err != nil {
			return nil, nil, &ApplyEntryError{Index: i, Err: fmt.Errorf("%w: %w", &state.FieldError{Field: "kind", Problem: err.Error()}, ErrUnknownKind)}
		}
		if err := r.canStamp(s); err != nil {
			return nil, nil, &ApplyEntryError{Index: i, Err: err}
		}
		c, ok := confined[s.Tenant]
		if !ok && s.Kind == "" && isConfined(s.Tenant, actorFrom(ctx)) {
			var err error
			if c, err = r.confinement(ctx, s.Tenant, true, false); err != nil {
				return nil, nil, &ApplyEntryError{Index: i, Err: err}
			}
			confined[s.Tenant] = c
			if t, ok := r.world.tenant(s.Tenant); c.dynamic != 0 && (!ok || t.DynamicUser == nil) {
				dynamic = append(dynamic, s.Tenant)
			}
		}
		if s.Kind != "" {
			c = nil
		}
		if err := checkRunnable(s, r.secrets, c); err != nil {
			return nil, nil, &ApplyEntryError{Index: i, Err: err}
		}
		if err := r.canContain(s); err != nil {
			return nil, nil, &ApplyEntryError{Index: i, Err: err}
		}
		if err := r.canPlace(s); err != nil {
			return nil, nil, &ApplyEntryError{Index: i, Err: err}
		}
		if j, dup := seen[s.Key()]; dup {
			return nil, nil, &ApplyEntryError{Index: i, Err: &state.FieldError{
				Field: "name", Problem: fmt.Sprintf("%s is also services[%d]; a service may appear once", s.Key(), j),
			}}
		}
		seen[s.Key()] = i
		specs[i] = s
	}
	if i, err := r.checkOrder(specs); err != nil {
		return nil, nil, &ApplyEntryError{Index: i, Err: err}
	}
	return specs, dynamic, nil
}

// refuseTenantTypos fails when the plan prunes (T, NAME) while an entry
// creates NAME in a tenant that has no service yet: what a misspelt tenant
// does, killing the service it meant to keep. See [ErrApplyAmbiguous].
func (r *Runtime) refuseTenantTypos(specs []Spec, items []ApplyItem) error {
	pruned := map[string]state.Key{}
	for _, it := range items {
		if _, ok := pruned[it.Name]; it.Action == ApplyPrune && !ok {
			pruned[it.Name] = state.Key{Tenant: it.Tenant, Name: it.Name}
		}
	}
	if len(pruned) == 0 {
		return nil
	}
	tenants := map[string]bool{}
	for _, s := range specs {
		tenants[s.Tenant] = true
	}
	known := r.world.tenantsWithServices(tenants)
	for i, s := range specs {
		from, ok := pruned[s.Name]
		if !ok || known[s.Tenant] {
			continue
		}
		return &ApplyEntryError{Index: i, Err: fmt.Errorf("%w: %w", &state.FieldError{
			Field: "tenant",
			Problem: fmt.Sprintf("%q has no services yet, and this prune would kill %s, which the entry names: a misspelt tenant? "+
				"To move %s into a new tenant, apply without prune first", s.Tenant, from, s.Name),
		}, ErrApplyAmbiguous)}
	}
	return nil
}

// actApply stops pruned services and hands new generations to the
// supervisor, on bounded workers. The first error is returned after every
// item was tried: one service that fails to stop does not hold back the
// others.
func (r *Runtime) actApply(ctx context.Context, items []ApplyItem) error {
	work := make(chan ApplyItem)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	for range min(applyWorkers(), len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if r.clustered() {
					continue // the node each is placed on acts (its reconciler)
				}
				key := state.Key{Tenant: it.Tenant, Name: it.Name}
				// Stop the old loop (a prune, or the old generation of an
				// update) before the new one starts: two generations never
				// run at once.
				if err := r.stopLoop(ctx, key); err != nil {
					fail(fmt.Errorf("%s: %w", key, err))
					continue
				}
				if it.Action == ApplyPrune {
					continue
				}
				svc, ok := r.world.service(key.Tenant, key.Name)
				if !ok {
					fail(fmt.Errorf("%s: %w", key, ErrNotFound))
					continue
				}
				if err := r.supervise(svc, nil, 0, time.Time{}); err != nil {
					fail(fmt.Errorf("%s: %w", key, err))
				}
			}
		}()
	}
	for _, it := range items {
		if it.Action != ApplyUnchanged {
			work <- it
		}
	}
	close(work)
	wg.Wait()
	return firstErr
}

// maxAppend is the store's limit of events per append.
func (r *Runtime) maxAppend() int {
	if b, ok := r.store.(interface{ MaxAppend() int }); ok {
		return b.MaxAppend()
	}
	return eventstore.DefaultMaxBatch // a Log that says nothing: the smallest limit Solo knows
}

// desiredIn returns the keys of the desired services of the given
// tenants that a file may prune: every one but the kernel sessions'.
func (f *follower) desiredIn(tenants map[string]bool) []state.Key {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []state.Key
	for _, s := range f.w.Desired() {
		if tenants[s.Tenant] && !session.IsService(s.Name) {
			out = append(out, state.Key{Tenant: s.Tenant, Name: s.Name})
		}
	}
	return out
}

// tenantsWithServices returns which of tenants have a service in the
// world, in any state.
func (f *follower) tenantsWithServices(tenants map[string]bool) map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for _, s := range f.w.Services() {
		if tenants[s.Tenant] {
			out[s.Tenant] = true
		}
	}
	return out
}

// nextGenerations returns the generation the next deploy of each key gets.
func (f *follower) nextGenerations(keys []state.Key) map[state.Key]uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[state.Key]uint64, len(keys))
	for _, k := range keys {
		out[k] = f.w.NextGeneration(k.Tenant, k.Name)
	}
	return out
}

// MaxApplyFileBytes bounds what [DecodeApplyFile] reads.
const MaxApplyFileBytes = 16 << 20

// DecodeApplyFile reads the YAML file of `solo apply -f`:
//
//	services:
//	  - name: web
//	    tenant: default          # optional
//	    command: ["sleep", "3600"]
//	    restart: always          # always | on-failure | never
//	    env: {PORT: "8080"}      # optional; a value {secret: NAME} is the
//	                             # vault's secret NAME, read at every start
//	    dir: /srv/web            # optional; so are stop_signal, stop_timeout,
//	    max_restarts: 5          # restart_window (durations such as "10s")
//	    user: www-data           # optional, and group, groups (a list), umask
//	    env_file: /etc/web.env   # optional; one path or a list
//
// A relative dir or env_file is relative to the file's directory once
// [ResolveApplyPaths] has made it absolute (the CLI does); the runtime
// refuses a relative one.
//
// An in-process service has kind (and config, any YAML value, passed on as
// JSON) instead of command. Only services is allowed at the top, and only
// the fields above in an entry, each once: an unknown, mistyped or
// repeated one fails with an [*ApplyEntryError] naming the entry and the
// field, so a typo never goes unnoticed.
//
// A file of several YAML documents (separated by "---", as `cat a.yaml
// b.yaml` makes) is read whole, as one services list in file order; an
// empty document adds nothing. The file is read to its end or refused: an
// error in any document fails the whole file, naming the document, so a
// prune never acts on part of a file. A file with no service at all (empty,
// comments only, or every document empty) fails with [ErrApplyEmpty].
//
// It does not validate the specs; [Runtime.Apply] does. Prune and DryRun
// are left false: they are flags, not part of the file.
func DecodeApplyFile(r io.Reader) (ApplyRequest, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxApplyFileBytes+1))
	if err != nil {
		return ApplyRequest{}, fmt.Errorf("read apply file: %w", err)
	}
	if len(data) > MaxApplyFileBytes {
		return ApplyRequest{}, fmt.Errorf("apply file is over %d bytes", MaxApplyFileBytes)
	}
	// Every document first: their count decides how errors name them.
	var docs []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if len(docs) > 0 {
				return ApplyRequest{}, fmt.Errorf("apply file: document %d: %w", len(docs)+1, err)
			}
			return ApplyRequest{}, fmt.Errorf("apply file: %w", err)
		}
		docs = append(docs, &n)
	}
	var req ApplyRequest
	for i, doc := range docs {
		d, where := 0, ""
		if len(docs) > 1 {
			d, where = i+1, fmt.Sprintf("document %d: ", i+1)
		}
		list, err := fileServices(doc)
		if err != nil {
			return ApplyRequest{}, fmt.Errorf("apply file: %s%w", where, err)
		}
		for _, n := range list {
			spec, err := decodeFileService(n)
			if err != nil {
				return ApplyRequest{}, &ApplyEntryError{Index: len(req.Services), Document: d, Err: err}
			}
			req.Services = append(req.Services, spec)
		}
	}
	if len(req.Services) == 0 {
		return ApplyRequest{}, fmt.Errorf("apply file: %w: no document of it lists a service; want a services: list with at least one entry (is it the right file?)", ErrApplyEmpty)
	}
	return req, nil
}

// fileServices returns the entries of the services list of one document
// of an apply file: none for an empty document.
func fileServices(doc *yaml.Node) ([]*yaml.Node, error) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("line %d: not a YAML document", doc.Line)
	}
	root := resolveAlias(doc.Content[0])
	switch {
	case isNull(root):
		return nil, nil
	case root.Kind != yaml.MappingNode:
		return nil, fmt.Errorf("line %d: want a mapping with a services: list", root.Line)
	}
	var list *yaml.Node
	first := 0
	for j := 0; j+1 < len(root.Content); j += 2 {
		k, v := root.Content[j], root.Content[j+1]
		if k.Value != "services" {
			return nil, fmt.Errorf("line %d: unknown field %q at the top; only services is allowed", k.Line, k.Value)
		}
		if list != nil {
			return nil, fmt.Errorf("line %d: services is given twice (first at line %d); which list is meant?", k.Line, first)
		}
		list, first = resolveAlias(v), k.Line
	}
	switch {
	case list == nil || isNull(list):
		return nil, nil
	case list.Kind != yaml.SequenceNode:
		return nil, fmt.Errorf("line %d: services: want a list of services", list.Line)
	}
	return list.Content, nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// fileFields are the fields of an entry of an apply file, each with how it
// is decoded into a spec.
var fileFields = map[string]func(n *yaml.Node, s *Spec) error{
	"tenant":  func(n *yaml.Node, s *Spec) error { return n.Decode(&s.Tenant) },
	"name":    func(n *yaml.Node, s *Spec) error { return n.Decode(&s.Name) },
	"command": func(n *yaml.Node, s *Spec) error { return n.Decode(&s.Command) },
	"kind":    func(n *yaml.Node, s *Spec) error { return n.Decode(&s.Kind) },
	"config": func(n *yaml.Node, s *Spec) error {
		var v any
		if err := n.Decode(&v); err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("not representable as JSON: %w", err)
		}
		s.Config = b
		return nil
	},
	"env":            decodeEnv,
	"dir":            func(n *yaml.Node, s *Spec) error { return n.Decode(&s.Dir) },
	"restart":        func(n *yaml.Node, s *Spec) error { return n.Decode((*string)(&s.Restart)) },
	"max_restarts":   func(n *yaml.Node, s *Spec) error { return n.Decode(&s.MaxRestarts) },
	"restart_window": func(n *yaml.Node, s *Spec) error { return decodeDuration(n, &s.RestartWindow) },
	"stop_signal":    func(n *yaml.Node, s *Spec) error { return n.Decode(&s.StopSignal) },
	"stop_timeout":   func(n *yaml.Node, s *Spec) error { return decodeDuration(n, &s.StopTimeout) },
	"user":           func(n *yaml.Node, s *Spec) error { return decodeScalar(n, &s.User) },
	"group":          func(n *yaml.Node, s *Spec) error { return decodeScalar(n, &s.Group) },
	"groups":         func(n *yaml.Node, s *Spec) error { return decodeStrings(n, &s.Groups) },
	"umask":          func(n *yaml.Node, s *Spec) error { return decodeScalar(n, &s.Umask) },
	"env_file":       func(n *yaml.Node, s *Spec) error { return decodeStrings(n, &s.EnvFile) },
	"log":            decodeLog,
	"ready":          decodeReady,
	"health":         decodeHealth,
	"after":          func(n *yaml.Node, s *Spec) error { return decodeStrings(n, &s.After) },
	"requires":       func(n *yaml.Node, s *Spec) error { return decodeStrings(n, &s.Requires) },
	"nodes":          func(n *yaml.Node, s *Spec) error { return decodeStrings(n, &s.Nodes) },
}

// decodeReady reads an apply file's ready: {http: URL} or {tcp: HOST:PORT}
// or {exec: [CMD, ARG...]} or {notify: true}, with an optional timeout;
// [state.Spec.Validate] checks the values.
func decodeReady(n *yaml.Node, s *Spec) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("want a mapping with one of http, tcp, exec, notify and an optional timeout")
	}
	r := &state.ReadySpec{}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		var err error
		switch k.Value {
		case "http":
			err = decodeScalar(v, &r.HTTP)
		case "tcp":
			err = decodeScalar(v, &r.TCP)
		case "exec":
			err = decodeStrings(v, &r.Exec)
			if err == nil && r.Exec == nil {
				r.Exec = []string{}
			}
		case "notify":
			err = v.Decode(&r.Notify)
		case "timeout":
			err = decodeDuration(v, &r.Timeout)
		default:
			return fmt.Errorf("ready.%s: unknown field (line %d); known: http, tcp, exec, notify, timeout", k.Value, k.Line)
		}
		if err != nil {
			return fmt.Errorf("ready.%s: %w", k.Value, err)
		}
	}
	s.Ready = r
	return nil
}

// decodeHealth reads an apply file's health: {http: URL} or {tcp:
// HOST:PORT} or {exec: [CMD, ARG...]}, with optional interval, timeout,
// retries, and/or watchdog; [state.Spec.Validate] checks the values. An
// explicit zero (interval: 0s, retries: 0) is refused here: the spec
// reads zero as the default, which is not what such a line says.
func decodeHealth(n *yaml.Node, s *Spec) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("want a mapping with one of http, tcp, exec, and optional interval, timeout, retries, watchdog")
	}
	h := &state.HealthSpec{}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		var err error
		var d *state.Duration
		switch k.Value {
		case "http":
			err = decodeScalar(v, &h.HTTP)
		case "tcp":
			err = decodeScalar(v, &h.TCP)
		case "exec":
			err = decodeStrings(v, &h.Exec)
			if err == nil && h.Exec == nil {
				h.Exec = []string{}
			}
		case "interval":
			d = &h.Interval
		case "timeout":
			d = &h.Timeout
		case "watchdog":
			d = &h.Watchdog
		case "retries":
			if err = v.Decode(&h.Retries); err == nil && h.Retries < 1 {
				err = fmt.Errorf("is %d, must be at least 1", h.Retries)
			}
		default:
			return fmt.Errorf("health.%s: unknown field (line %d); known: http, tcp, exec, interval, timeout, retries, watchdog", k.Value, k.Line)
		}
		if d != nil {
			if err = decodeDuration(v, d); err == nil && *d <= 0 {
				err = fmt.Errorf("is %s, must be > 0", *d)
			}
		}
		if err != nil {
			return fmt.Errorf("health.%s: %w", k.Value, err)
		}
	}
	s.Health = h
	return nil
}

// decodeEnv reads an apply file's env: each value a string, or
// {secret: NAME} for a secret of the vault (into EnvSecrets).
func decodeEnv(n *yaml.Node, s *Spec) error {
	n = resolveAlias(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of KEY: value or KEY: {secret: NAME}", n.Line)
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j].Value, resolveAlias(n.Content[j+1])
		if v.Kind != yaml.MappingNode {
			var val string
			if err := v.Decode(&val); err != nil {
				return fmt.Errorf("env.%s: %w", k, err)
			}
			if s.Env == nil {
				s.Env = map[string]string{}
			}
			s.Env[k] = val
			continue
		}
		var ref struct {
			Secret string `yaml:"secret"`
		}
		if len(v.Content) != 2 || v.Content[0].Value != "secret" {
			return fmt.Errorf("env.%s (line %d): a mapping must be {secret: NAME}", k, v.Line)
		}
		if err := v.Decode(&ref); err != nil {
			return fmt.Errorf("env.%s: %w", k, err)
		}
		if s.EnvSecrets == nil {
			s.EnvSecrets = map[string]string{}
		}
		s.EnvSecrets[k] = ref.Secret
	}
	return nil
}

// decodeLog reads an apply file's log: {max_size, files, timestamps};
// max_size as ByteSize reads it ("10MiB", "10M", bytes).
func decodeLog(n *yaml.Node, s *Spec) error {
	var raw struct {
		MaxSize    *string `yaml:"max_size"`
		Files      int     `yaml:"files"`
		Timestamps bool    `yaml:"timestamps"`
	}
	if n.Kind != yaml.MappingNode && !isNull(n) {
		return fmt.Errorf("want a mapping with max_size, files, timestamps")
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		switch k := n.Content[j].Value; k {
		case "max_size", "files", "timestamps":
		default:
			return fmt.Errorf("log.%s: unknown field (line %d); known: max_size, files, timestamps", k, n.Content[j].Line)
		}
	}
	if err := n.Decode(&raw); err != nil {
		return err
	}
	l := &state.LogSpec{Files: raw.Files, Timestamps: raw.Timestamps}
	if raw.MaxSize != nil {
		if err := l.MaxSize.UnmarshalText([]byte(*raw.MaxSize)); err != nil {
			return fmt.Errorf("log.%w", err)
		}
	}
	s.Log = l
	return nil
}

// decodeScalar takes a scalar's text as written: a umask of 0027 stays
// "0027" (YAML would read it as the number 23), a user 999 "999".
func decodeScalar(n *yaml.Node, v *string) error {
	n = resolveAlias(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return fmt.Errorf("line %d: want a single value", n.Line)
	}
	*v = n.Value
	return nil
}

// decodeStrings takes one value or a list of them.
func decodeStrings(n *yaml.Node, v *[]string) error {
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		*v = []string{n.Value}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("line %d: want a value or a list of values", n.Line)
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		var s string
		if err := decodeScalar(c, &s); err != nil {
			return err
		}
		out = append(out, s)
	}
	*v = out
	return nil
}

// ResolveApplyPaths makes the relative paths of the entries of a decoded
// apply file absolute against base, the file's directory: dir and each
// env_file. An absolute path, and an empty dir (the daemon's working
// directory), are left as they are. Call it between [DecodeApplyFile] and
// [Runtime.Apply], which refuses a relative path.
func ResolveApplyPaths(req *ApplyRequest, base string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	for i := range req.Services {
		s := &req.Services[i]
		s.Dir = abs(s.Dir)
		for j, f := range s.EnvFile {
			s.EnvFile[j] = abs(f)
		}
	}
}

func decodeDuration(n *yaml.Node, d *state.Duration) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	return d.UnmarshalText([]byte(s))
}

func decodeFileService(n *yaml.Node) (Spec, error) {
	var s Spec
	if n.Kind != yaml.MappingNode {
		return s, fmt.Errorf("line %d: want a mapping with name and command", n.Line)
	}
	seen := map[string]int{}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		if first, dup := seen[k.Value]; dup {
			return s, &state.FieldError{Field: k.Value, Problem: fmt.Sprintf("is set twice (lines %d and %d); which one is meant?", first, k.Line)}
		}
		seen[k.Value] = k.Line
		decode, ok := fileFields[k.Value]
		if !ok {
			known := make([]string, 0, len(fileFields))
			for f := range fileFields {
				known = append(known, f)
			}
			sort.Strings(known)
			return s, &state.FieldError{Field: k.Value, Problem: fmt.Sprintf("unknown field (line %d); known: %s", k.Line, strings.Join(known, ", "))}
		}
		if err := decode(v, &s); err != nil {
			msg := err.Error()
			var te *yaml.TypeError
			if errors.As(err, &te) && len(te.Errors) > 0 {
				msg = strings.Join(te.Errors, "; ")
			} else {
				msg = fmt.Sprintf("line %d: %s", v.Line, msg)
			}
			return s, &state.FieldError{Field: k.Value, Problem: msg}
		}
	}
	return s, nil
}
