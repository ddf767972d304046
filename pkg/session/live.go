package session

import (
	"regexp"
	"strings"
	"sync"

	"github.com/solo-rt/solo/pkg/kernel"
	"github.com/solo-rt/solo/pkg/state"
)

// truncatedNote ends the text of a task whose outputs were cut.
const truncatedNote = "\n[solo: output truncated]\n"

// liveTask holds the outputs of a running task, bounded, for its readers.
// The kernel's reader goroutine appends under a short lock and never waits
// for a reader; readers copy what they need and write it out unlocked (I8).
type liveTask struct {
	limit int

	mu        sync.Mutex
	outs      []state.TaskOutput
	text      []byte // the outputs rendered, as [Render] gives them
	truncated bool
	changed   chan struct{} // closed and replaced on each change
	done      bool
	cancelled bool // a cancel interrupted it
}

func newLiveTask(limit int) *liveTask {
	return &liveTask{limit: limit, changed: make(chan struct{})}
}

// add takes one kernel output (called from the client's iopub goroutine).
func (l *liveTask) add(o kernel.Output) {
	l.addOutput(toTaskOutput(o))
}

func (l *liveTask) addOutput(o state.TaskOutput) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.truncated || l.done {
		return
	}
	r := renderOne(o)
	if room := l.limit - len(l.text); len(r) > room {
		// Keep what fits of a text output; drop the rest.
		if o.Kind == "stream" && room > 0 {
			o.Text = o.Text[:room]
			l.append(o, r[:room])
		}
		l.truncated = true
		l.text = append(l.text, truncatedNote...)
		l.notify()
		return
	}
	l.append(o, r)
	l.notify()
}

func (l *liveTask) append(o state.TaskOutput, r string) {
	// Adjacent chunks of one stream are merged: a loop of prints is one
	// output, not thousands.
	if n := len(l.outs); n > 0 && o.Kind == "stream" && l.outs[n-1].Kind == "stream" && l.outs[n-1].Name == o.Name {
		l.outs[n-1].Text += o.Text
	} else {
		l.outs = append(l.outs, o)
	}
	l.text = append(l.text, r...)
}

func (l *liveTask) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// snapshot returns the outputs so far.
func (l *liveTask) snapshot() ([]state.TaskOutput, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]state.TaskOutput, len(l.outs))
	copy(out, l.outs)
	return out, l.truncated
}

// textFrom returns the rendered text from byte off, whether the task is
// done, and a channel closed at the next change.
func (l *liveTask) textFrom(off int) ([]byte, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b []byte
	if off < len(l.text) {
		b = append([]byte(nil), l.text[off:]...)
	}
	return b, l.done, l.changed
}

func (l *liveTask) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.done = true
		l.notify()
	}
}

func (l *liveTask) setCancelled() {
	l.mu.Lock()
	l.cancelled = true
	l.mu.Unlock()
}

func (l *liveTask) wasCancelled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cancelled
}

func toTaskOutput(o kernel.Output) state.TaskOutput {
	out := state.TaskOutput{Kind: string(o.Kind), Name: o.Name, Text: o.Text}
	if o.Kind == kernel.OutputError {
		if len(o.Traceback) > 0 {
			out.Text = stripANSI(strings.Join(o.Traceback, "\n"))
		} else {
			out.Text = o.EName + ": " + o.EValue
		}
	}
	return out
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

func stripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

// renderOne is the text of one output: a stream as is, anything else on
// its own line.
func renderOne(o state.TaskOutput) string {
	if o.Kind == "stream" || o.Text == "" || strings.HasSuffix(o.Text, "\n") {
		return o.Text
	}
	return o.Text + "\n"
}

// Render returns the text of a task's outputs, as `solo task output`
// prints it: streams as written, results and errors on lines of their own,
// and a note at the end if they were truncated.
func Render(outs []state.TaskOutput, truncated bool) []byte {
	var b []byte
	for _, o := range outs {
		b = append(b, renderOne(o)...)
	}
	if truncated {
		b = append(b, truncatedNote...)
	}
	return b
}
