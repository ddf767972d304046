package witness

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultInterval is how often a reporter sends, and DefaultWindow how long
// an instance stays live without a report.
const (
	DefaultInterval = 100 * time.Millisecond
	DefaultWindow   = time.Second
)

// Report is one datagram: an instance of a service saying it is alive.
type Report struct {
	Service string `json:"service"`        // the service's name, e.g. "default/web"
	Node    string `json:"node,omitempty"` // the node it runs on (SOLO_NODE)
	PID     int    `json:"pid"`
	Fence   int64  `json:"fence"` // SOLO_FENCE, 0 when unset
	Seq     uint64 `json:"seq"`   // 1, 2, ... per reporter: gaps are lost datagrams
	At      int64  `json:"at"`    // [Now] when sent
}

// Dead is a test's statement that instances are dead (it SIGKILLed them
// and saw them go). Node and PID select them (both when both are set); at
// least one must be set. Service, if set, narrows the selection.
type Dead struct {
	Node    string `json:"node,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Service string `json:"service,omitempty"`
}

// Instance is what the witness knows of one (node, pid) of a service.
type Instance struct {
	Node    string `json:"node,omitempty"`
	PID     int    `json:"pid"`
	Fence   int64  `json:"fence"` // of its latest report
	First   int64  `json:"first"` // [Now] of its first report
	Last    int64  `json:"last"`  // [Now] of its last report
	Reports int    `json:"reports"`
	Missing uint64 `json:"missing"` // gaps in its sequence numbers
	Dead    bool   `json:"dead,omitempty"`
	// AfterDeath counts its reports sent after it was declared dead.
	AfterDeath int  `json:"after_death,omitempty"`
	Live       bool `json:"live"`
}

// Overlap is two instances of a service seen alive at the same instant.
type Overlap struct {
	Earlier Instance      `json:"earlier"`
	Later   Instance      `json:"later"`
	By      time.Duration `json:"by"` // how long both were seen alive
}

// FenceRegression is a report with a lower fence sent after the first
// report with a higher one.
type FenceRegression struct {
	Lower       int64 `json:"lower"`
	Higher      int64 `json:"higher"`
	LowerLast   int64 `json:"lower_last"`   // [Now] of the last report with Lower
	HigherFirst int64 `json:"higher_first"` // [Now] of the first report with Higher
}

// ServiceState is the verdict on one service.
type ServiceState struct {
	Instances        []Instance        `json:"instances"` // by first report
	Live             []Instance        `json:"live"`      // the current instances
	MaxLive          int               `json:"max_live"`  // most instances alive at one instant, ever
	Overlaps         []Overlap         `json:"overlaps,omitempty"`
	FenceRegressions []FenceRegression `json:"fence_regressions,omitempty"`
	Missing          uint64            `json:"missing"`               // lost reports, all instances
	AfterDeath       int               `json:"after_death,omitempty"` // reports from the declared dead
}

// State is the witness's verdict on every service that reported.
type State struct {
	Version   uint64                  `json:"version"` // grows with every change but a live instance's routine report
	Now       int64                   `json:"now"`
	Window    time.Duration           `json:"window"`
	Malformed int                     `json:"malformed"` // datagrams that were not a valid Report
	Services  map[string]ServiceState `json:"services"`
}

// Now returns CLOCK_MONOTONIC in nanoseconds: one clock for every process
// of the machine, never stepped.
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_MONOTONIC): %v", err))
	}
	return ts.Nano()
}

// ErrBadReport is returned by [Ledger.Record] for a report without a
// service or a pid, and ErrBadDead by [Ledger.MarkDead] for a [Dead] that
// selects nothing.
var (
	ErrBadReport = errors.New("report needs a service and a pid")
	ErrBadDead   = errors.New("dead needs a node or a pid")
)

type instanceKey struct {
	node string
	pid  int
}

type instance struct {
	Instance
	deadAt         int64
	minSeq, maxSeq uint64
}

// span is when reports with one fence were seen.
type span struct{ first, last int64 }

type service struct {
	instances map[instanceKey]*instance
	fences    map[int64]*span
}

// Ledger is the witness's memory: every instance of every service, and the
// rules of the package doc over them.
type Ledger struct {
	window time.Duration

	mu        sync.Mutex
	services  map[string]*service
	version   uint64
	malformed int
	changed   chan struct{} // closed and replaced at each version
}

// NewLedger returns an empty ledger whose instances stay live for window
// after their last report ([DefaultWindow] if zero).
func NewLedger(window time.Duration) *Ledger {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Ledger{window: window, services: map[string]*service{}, changed: make(chan struct{})}
}

// bump records a change; l.mu is held.
func (l *Ledger) bump() {
	l.version++
	close(l.changed)
	l.changed = make(chan struct{})
}

// Malformed counts a datagram that was not a report.
func (l *Ledger) Malformed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.malformed++
	l.bump()
}

// Record adds one report. Reports may come in any order.
func (l *Ledger) Record(r Report) error {
	if r.Service == "" || r.PID <= 0 {
		return fmt.Errorf("%w: service %q, pid %d", ErrBadReport, r.Service, r.PID)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.services[r.Service]
	if s == nil {
		s = &service{instances: map[instanceKey]*instance{}, fences: map[int64]*span{}}
		l.services[r.Service] = s
	}
	changed := false
	k := instanceKey{r.Node, r.PID}
	in := s.instances[k]
	if in == nil {
		in = &instance{Instance: Instance{Node: r.Node, PID: r.PID, First: r.At, Last: r.At}, minSeq: r.Seq, maxSeq: r.Seq}
		s.instances[k] = in
		changed = true
	}
	in.Reports++
	in.First, in.Last = min(in.First, r.At), max(in.Last, r.At)
	in.minSeq, in.maxSeq = min(in.minSeq, r.Seq), max(in.maxSeq, r.Seq)
	if r.At >= in.Last {
		in.Fence = r.Fence
	}
	if in.Dead && r.At > in.deadAt {
		in.AfterDeath++
		changed = true
	}
	sp := s.fences[r.Fence]
	if sp == nil {
		s.fences[r.Fence] = &span{r.At, r.At}
		changed = true
	} else {
		sp.first, sp.last = min(sp.first, r.At), max(sp.last, r.At)
	}
	// A superseded instance that still reports may have just made an
	// overlap: a change.
	for _, o := range s.instances {
		if o != in && o.First > in.First {
			changed = true
			break
		}
	}
	if changed {
		l.bump()
	}
	return nil
}

// MarkDead declares the instances d selects dead at the instant at (a
// [Now]); it returns how many it marked.
func (l *Ledger) MarkDead(d Dead, at int64) (int, error) {
	if d.Node == "" && d.PID == 0 {
		return 0, ErrBadDead
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for name, s := range l.services {
		if d.Service != "" && d.Service != name {
			continue
		}
		for k, in := range s.instances {
			if (d.Node != "" && k.node != d.Node) || (d.PID != 0 && k.pid != d.PID) || in.Dead {
				continue
			}
			in.Dead, in.deadAt = true, at
			n++
		}
	}
	if n > 0 {
		l.bump()
	}
	return n, nil
}

// Changed returns the current version and a channel closed at the next
// change.
func (l *Ledger) Changed() (uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.version, l.changed
}

// State returns the verdict on every service at the instant now (a
// [Now]).
func (l *Ledger) State(now int64) State {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := State{Version: l.version, Now: now, Window: l.window, Malformed: l.malformed, Services: map[string]ServiceState{}}
	for name, s := range l.services {
		st.Services[name] = s.state(now, l.window)
	}
	return st
}

func (s *service) state(now int64, window time.Duration) ServiceState {
	var ss ServiceState
	for _, in := range s.instances {
		i := in.Instance
		i.Missing = in.maxSeq - in.minSeq + 1 - min(uint64(i.Reports), in.maxSeq-in.minSeq+1)
		i.Live = (!i.Dead || i.AfterDeath > 0) && now-i.Last <= int64(window)
		ss.Instances = append(ss.Instances, i)
		ss.Missing += i.Missing
		ss.AfterDeath += i.AfterDeath
	}
	sort.Slice(ss.Instances, func(a, b int) bool {
		x, y := ss.Instances[a], ss.Instances[b]
		if x.First != y.First {
			return x.First < y.First
		}
		if x.Node != y.Node {
			return x.Node < y.Node
		}
		return x.PID < y.PID
	})
	ss.MaxLive = maxLive(ss.Instances)
	ss.Overlaps = overlaps(ss.Instances)
	for _, i := range ss.Instances {
		if i.Live {
			ss.Live = append(ss.Live, i)
		}
	}
	ss.FenceRegressions = regressions(s.fences)
	return ss
}

// overlapping is the overlap rule of the package doc, for a began no
// later than b.
func overlapping(a, b Instance) bool {
	return b.First < a.Last || b.First == a.First
}

// maxLive returns the most instances alive at one instant, of instances
// sorted by First. The most are alive at some instance's first report.
func maxLive(ins []Instance) int {
	most := 0
	for i, b := range ins {
		n := 1
		for j, a := range ins {
			if j != i && (a.First == b.First || (a.First < b.First && overlapping(a, b))) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// overlaps returns every overlapping pair of instances sorted by First.
func overlaps(ins []Instance) []Overlap {
	var out []Overlap
	for i, a := range ins {
		for _, b := range ins[i+1:] {
			if overlapping(a, b) {
				out = append(out, Overlap{Earlier: a, Later: b, By: time.Duration(min(a.Last, b.Last) - b.First)})
			}
		}
	}
	return out
}

// regressions returns the fence pairs where a lower fence was reported
// after a higher one first was.
func regressions(fences map[int64]*span) []FenceRegression {
	var fs []int64
	for f := range fences {
		fs = append(fs, f)
	}
	sort.Slice(fs, func(a, b int) bool { return fs[a] < fs[b] })
	var out []FenceRegression
	for i, lo := range fs {
		for _, hi := range fs[i+1:] {
			if fences[lo].last > fences[hi].first {
				out = append(out, FenceRegression{Lower: lo, Higher: hi, LowerLast: fences[lo].last, HigherFirst: fences[hi].first})
			}
		}
	}
	return out
}

// Violations lists every breach of the cluster's invariants the witness
// saw, one line per breach, by service: two instances alive at one
// instant, a fence that went back, a report from an instance declared
// dead, a datagram that was no report. Empty when there is none: what
// every cluster scenario asserts at its end.
func (st State) Violations() []string {
	var out []string
	if st.Malformed > 0 {
		out = append(out, fmt.Sprintf("%d datagrams were not reports", st.Malformed))
	}
	for _, name := range st.names() {
		ss := st.Services[name]
		for _, o := range ss.Overlaps {
			out = append(out, fmt.Sprintf("%s: %s pid %d (fence %d) and %s pid %d (fence %d) both alive for %v",
				name, o.Earlier.Node, o.Earlier.PID, o.Earlier.Fence, o.Later.Node, o.Later.PID, o.Later.Fence, o.By))
		}
		for _, r := range ss.FenceRegressions {
			out = append(out, fmt.Sprintf("%s: fence %d reported %v after fence %d first was",
				name, r.Lower, time.Duration(r.LowerLast-r.HigherFirst), r.Higher))
		}
		if ss.AfterDeath > 0 {
			out = append(out, fmt.Sprintf("%s: %d reports from instances declared dead", name, ss.AfterDeath))
		}
	}
	return out
}

// RunningOnce returns nil if each of services has exactly one live
// instance now, else an error naming each one that has none or several.
func (st State) RunningOnce(services ...string) error {
	var bad []string
	for _, name := range services {
		live := st.Services[name].Live
		if len(live) != 1 {
			var where []string
			for _, i := range live {
				where = append(where, fmt.Sprintf("%s pid %d", i.Node, i.PID))
			}
			bad = append(bad, fmt.Sprintf("%s: %d live %v", name, len(live), where))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not running exactly once: %s", strings.Join(bad, "; "))
	}
	return nil
}

// names returns the services, sorted.
func (st State) names() []string {
	var names []string
	for name := range st.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
