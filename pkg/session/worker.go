package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/solo-rt/solo/pkg/kernel"
	"github.com/solo-rt/solo/pkg/state"
)

// retryDelay spaces attempts to connect to a kernel that runs but does not
// answer yet.
const retryDelay = 500 * time.Millisecond

// errKernelLost is the cause of an execution cut short because its kernel
// died, hung, or its connection broke.
var errKernelLost = errors.New("kernel lost")

// worker runs one session's queue, one task at a time, in order. It is the
// only goroutine that talks to the session's kernel on shell, and the only
// one that decides to start a task; Cancel takes its decide lock to decide
// against it.
type worker struct {
	m   *Manager
	key state.Key
	log hclog.Logger

	ctx     context.Context
	cancelW context.CancelFunc
	wakeC   chan struct{}

	decide sync.Mutex // held while choosing and starting a task, and by cancel

	mu        sync.Mutex
	client    *kernel.Client
	bound     state.KernelRef
	current   *liveTask
	currentID string
	cutExec   context.CancelCauseFunc
}

func newWorker(m *Manager, key state.Key) *worker {
	ctx, cancel := context.WithCancel(m.ctx)
	return &worker{m: m, key: key, log: m.log.With("session", key.String()), ctx: ctx, cancelW: cancel, wakeC: make(chan struct{}, 1)}
}

func (w *worker) wake() {
	select {
	case w.wakeC <- struct{}{}:
	default:
	}
}

func (w *worker) stop() { w.cancelW() }

func (w *worker) stopped() bool { return w.ctx.Err() != nil }

// sleep waits for a wake-up, or d if d > 0.
func (w *worker) sleep(d time.Duration) {
	var t <-chan time.Time
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		t = timer.C
	}
	select {
	case <-w.wakeC:
	case <-t:
	case <-w.ctx.Done():
	}
}

func (w *worker) conn() (*kernel.Client, state.KernelRef) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.client, w.bound
}

// drop forgets c (if it is still the connection) and cuts short what runs
// on it.
func (w *worker) drop(c *kernel.Client, cause error) {
	w.mu.Lock()
	if w.client == c {
		w.client = nil
		if w.cutExec != nil {
			w.cutExec(cause)
		}
	}
	w.mu.Unlock()
	c.Close()
	w.wake()
}

func (w *worker) run() {
	defer func() {
		if c, _ := w.conn(); c != nil {
			c.Close()
		}
	}()
	for w.ctx.Err() == nil {
		s, ok := w.m.session(w.key)
		if !ok || !s.Runs(w.m.opts.Node) {
			return
		}
		c, bound := w.conn()
		if c != nil && (c.Err() != nil || s.Instance == nil || s.Exited || *s.Instance != bound) {
			w.drop(c, fmt.Errorf("%w: its process changed", errKernelLost))
			continue
		}
		if c == nil {
			if s.Instance == nil || s.Exited {
				w.sleep(0) // for the kernel service to start
				continue
			}
			if err := w.connect(s); err != nil {
				if errors.Is(err, errInstanceGone) {
					continue // to the next instance, once it starts
				}
				if w.ctx.Err() == nil {
					w.log.Warn("cannot connect to kernel; will retry", "error", err)
					w.sleep(retryDelay)
				}
			}
			continue
		}
		if s.Running != "" {
			// Nothing runs in this worker between two tasks: a task the
			// log says runs was cut short by a daemon or kernel death.
			w.settle(c, s, s.Running)
			continue
		}
		if len(s.Queue) == 0 {
			w.sleep(0)
			continue
		}
		w.runNext(c)
	}
}

// connect dials the session's kernel instance and records
// session_kernel_ready when it is another process than the session had.
func (w *worker) connect(s *state.Session) error {
	ref := *s.Instance
	ctx, cancel := context.WithTimeout(w.ctx, w.m.opts.ReadyTimeout)
	defer cancel()
	// A connection to a process that has exited can never be made: stop
	// trying as soon as the log says so, and try the next one.
	ctx, gone := w.whileInstance(ctx, ref)
	defer gone()
	info, err := w.m.kernelConnection(ctx, w.key, ref)
	var c *kernel.Client
	if err == nil {
		c, err = kernel.Dial(ctx, info, &kernel.Options{Logger: w.log})
	}
	if err == nil {
		if err = c.Ready(ctx); err != nil {
			c.Close()
		}
	}
	if err != nil {
		if errors.Is(context.Cause(ctx), errInstanceGone) {
			return fmt.Errorf("kernel pid %d: %w", ref.PID, errInstanceGone)
		}
		if ctx.Err() != nil && w.ctx.Err() == nil {
			// Running, but not answering within ReadyTimeout: hung. Kill
			// it (only if it still is that process); its service restarts
			// it.
			w.log.Warn("kernel does not answer; killing it so that it restarts", "pid", ref.PID)
			if kerr := w.m.host.Signal(ref, syscall.SIGKILL); kerr != nil {
				w.log.Warn("cannot kill hung kernel", "error", kerr)
			}
		}
		return err
	}
	if s.Bound == nil || *s.Bound != ref {
		p := state.SessionKernelReady{PID: ref.PID, StartTicks: ref.StartTicks, BootID: ref.BootID}
		if s.Bound != nil {
			p.StateLost, p.Reason = true, "the kernel was restarted: its variables were lost"
		}
		if err := w.m.append(w.ctx, w.key, p); err != nil {
			c.Close()
			return err
		}
		if p.StateLost {
			w.log.Warn("kernel restarted; its state was lost", "pid", ref.PID)
		} else {
			w.log.Info("kernel ready", "pid", ref.PID)
		}
	} else {
		w.log.Info("reconnected to kernel; its state survived", "pid", ref.PID)
	}
	w.mu.Lock()
	w.client, w.bound = c, ref
	w.mu.Unlock()
	go w.heartbeat(c, ref)
	return nil
}

// errInstanceGone ends a connection attempt to a kernel process that the
// log says exited, or that another instance replaced.
var errInstanceGone = errors.New("the kernel process exited")

// whileInstance returns a context that ends with ctx, or with cause
// errInstanceGone once the session's kernel is no longer the running
// process ref. It waits on the fold, not on a timer.
func (w *worker) whileInstance(ctx context.Context, ref state.KernelRef) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		for {
			ch := w.m.changed() // before the read: a change after it wakes us
			s, ok := w.m.session(w.key)
			if !ok || !s.Live() || s.Instance == nil || s.Exited || *s.Instance != ref {
				cancel(errInstanceGone)
				return
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ctx, func() { cancel(nil) }
}

// heartbeat pings the kernel until c is done. A kernel that misses
// HeartbeatMisses pings in a row is hung: it is killed (identity-checked)
// and the connection dropped.
func (w *worker) heartbeat(c *kernel.Client, ref state.KernelRef) {
	o := w.m.opts
	t := time.NewTicker(o.HeartbeatInterval)
	defer t.Stop()
	misses := 0
	for {
		select {
		case <-c.Done():
			w.drop(c, fmt.Errorf("%w: %w", errKernelLost, c.Err()))
			return
		case <-w.ctx.Done():
			return
		case <-t.C:
		}
		err := c.Ping(w.ctx, o.HeartbeatTimeout)
		switch {
		case err == nil:
			misses = 0
			continue
		case w.ctx.Err() != nil:
			return
		case c.Err() != nil:
			continue // handled above
		}
		misses++
		w.log.Warn("kernel missed a heartbeat", "pid", ref.PID, "misses", misses)
		if misses >= o.HeartbeatMisses {
			w.log.Error("kernel is hung: killing it", "pid", ref.PID)
			if err := w.m.host.Signal(ref, syscall.SIGKILL); err != nil {
				w.log.Warn("cannot kill hung kernel", "error", err)
			}
			w.drop(c, fmt.Errorf("%w: no heartbeat", errKernelLost))
			return
		}
	}
}

// settle decides about a task the log says runs, but that no execution of
// this worker runs: it was cut short when the daemon (or its kernel) died.
// A retryable task runs again; any other fails with reason interrupted (a
// kernel that survived is interrupted first, in case it still runs it). It
// is never silently run again.
func (w *worker) settle(c *kernel.Client, s *state.Session, id string) {
	w.decide.Lock()
	t, ok := w.m.task(id)
	if !ok || t.State != state.TaskStateRunning {
		w.decide.Unlock()
		return
	}
	_, bound := w.conn()
	survived := t.KernelPID == bound.PID
	if t.Retryable && !t.CancelRequested {
		w.log.Info("running a retryable task again", "task", id, "attempt", t.Attempts+1)
		w.start(c, t) // unlocks decide
		return
	}
	defer w.decide.Unlock()
	detail := "the kernel died while it ran; it was restarted and its state was lost"
	if survived {
		detail = "solo stopped while it ran; the kernel survived and was interrupted; the task was not run again"
		ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
		if err := c.Interrupt(ctx); err != nil {
			w.log.Warn("cannot interrupt kernel", "error", err)
		}
		cancel()
	}
	reason := state.FailInterrupted
	if t.CancelRequested {
		reason = state.FailCancelled
	}
	// What it printed before is in its output file: record how much, and
	// start the output's lease.
	size, err := fileSize(w.m.outputPath(w.key, id))
	if err != nil {
		w.log.Warn("cannot read the size of an interrupted task's output", "task", id, "error", err)
	}
	end := state.TaskFailed{ID: id, Reason: reason, Detail: detail, OutputBytes: size, Truncated: size >= int64(w.m.opts.MaxOutputBytes)}
	if err := w.m.append(w.ctx, w.key, w.m.outputLease(id, size), end); err != nil {
		w.log.Error("cannot record interrupted task", "task", id, "error", err)
		w.sleep(retryDelay)
		return
	}
	w.log.Warn("task was running when solo stopped: reported as interrupted", "task", id, "survived", survived)
}

// runNext starts the first pending task.
func (w *worker) runNext(c *kernel.Client) {
	w.decide.Lock()
	s, ok := w.m.session(w.key)
	if !ok || !s.Live() || s.Running != "" || len(s.Queue) == 0 {
		w.decide.Unlock()
		return
	}
	t, ok := w.m.task(s.Queue[0])
	if !ok {
		w.decide.Unlock()
		return
	}
	w.start(c, t)
}

// start records task_started (before the kernel sees the code: I2), then
// releases the decide lock and runs t. When t ends and another task is
// pending, that one's start is recorded in the same append as t's end: one
// fsync less per queued task.
//
// A task's first start also adds its output file as an asset of the
// session, held while it runs; its end records the file's size and starts
// the output's lease, after the file was synced.
func (w *worker) start(c *kernel.Client, t *state.Task) {
	var prevEnd []state.Payload // the previous task's end, recorded with this start
	prevID := ""
	for {
		_, bound := w.conn()
		// The output file exists before the start is recorded, and readers
		// find it as soon as the start is folded.
		attempt := t.Attempts + 1
		lt, err := openLiveTask(w.m.outputPath(w.key, t.ID), attempt, int64(w.m.opts.MaxOutputBytes), w.m.opts.OutputSyncEvery, w.log)
		if err != nil {
			w.log.Error("cannot open the task's output file; it runs, but its output is lost", "task", t.ID, "error", err)
		}
		w.m.setLive(t.ID, lt)
		ps := append(prevEnd, state.TaskStarted{ID: t.ID, Attempt: attempt, PID: bound.PID})
		if attempt == 1 {
			ps = append(ps, state.AssetAdded{ID: t.ID, Kind: state.AssetOutput, Path: outputRel(t.ID)})
		}
		err = w.m.append(w.ctx, w.key, ps...)
		if prevID != "" {
			w.m.endLive(prevID)
		}
		if err != nil {
			w.decide.Unlock()
			lt.discard()
			w.m.endLive(t.ID)
			if w.ctx.Err() == nil {
				w.log.Error("cannot record task start", "task", t.ID, "error", err)
				w.sleep(retryDelay)
			}
			return
		}
		end, goOn := w.execute(c, t, lt) // releases decide
		if end == nil {
			w.m.endLive(t.ID)
			return
		}
		// The lease goes before the end: no fold sees the task ended and
		// its output without one.
		size, truncated := lt.flush()
		end = append([]state.Payload{w.m.outputLease(t.ID, size)}, withOutput(end, size, truncated)...)
		var next *state.Task
		if goOn {
			w.decide.Lock()
			if next = w.nextPending(c); next == nil {
				w.decide.Unlock()
			}
		}
		if next == nil {
			if err := w.m.append(context.WithoutCancel(w.ctx), w.key, end...); err != nil {
				w.log.Error("cannot record task end", "task", t.ID, "error", err)
			}
			w.m.endLive(t.ID)
			return
		}
		prevEnd, prevID, t = end, t.ID, next
	}
}

// nextPending returns the first pending task, if the worker may start it
// on c at once.
func (w *worker) nextPending(c *kernel.Client) *state.Task {
	if cur, _ := w.conn(); w.ctx.Err() != nil || cur != c || c.Err() != nil {
		return nil
	}
	s, ok := w.m.session(w.key)
	if !ok || !s.Live() || len(s.Queue) == 0 {
		return nil
	}
	t, ok := w.m.task(s.Queue[0])
	if !ok {
		return nil
	}
	return t
}

// execute runs t, started, on c: it makes t the current task, releases the
// decide lock, and returns t's end events. goOn is false when the kernel
// was lost; end is nil when nothing is to be recorded (the worker is
// closing, or a retryable task will run again).
func (w *worker) execute(c *kernel.Client, t *state.Task, lt *liveTask) (end []state.Payload, goOn bool) {
	ctx, cut := context.WithCancelCause(w.ctx)
	defer cut(nil)
	w.mu.Lock()
	w.current, w.currentID, w.cutExec = lt, t.ID, cut
	w.mu.Unlock()
	w.decide.Unlock()
	defer func() {
		w.mu.Lock()
		w.current, w.currentID, w.cutExec = nil, "", nil
		w.mu.Unlock()
	}()

	var err error
	switch t.Kind {
	case state.TaskCheckpoint:
		end, err = w.checkpoint(ctx, c, t, lt)
	case state.TaskRestore:
		end, err = w.restore(ctx, c, t, lt)
	default:
		var r kernel.Reply
		r, err = c.Execute(ctx, kernel.ExecuteRequest{Code: t.Code, StoreHistory: true}, lt.add)
		if err == nil {
			end = []state.Payload{w.ended(t, r, lt)}
		}
	}
	if err == nil {
		return end, true
	}
	if w.ctx.Err() != nil {
		return nil, false // closing or removed: the next start (or the removal) settles it
	}
	cause := context.Cause(ctx)
	if cause == nil || errors.Is(cause, context.Canceled) {
		cause = err
	}
	if cur, _ := w.conn(); cur == c {
		w.drop(c, cause)
	}
	if t.Retryable && !lt.wasCancelled() {
		w.log.Warn("kernel lost during a retryable task; it will run again", "task", t.ID, "cause", cause)
		return nil, false
	}
	reason := state.FailKernelDied
	if lt.wasCancelled() {
		reason = state.FailCancelled // the kernel was killed to carry out the cancel
	}
	return []state.Payload{state.TaskFailed{ID: t.ID, Reason: reason, Detail: cause.Error()}}, false
}

// withOutput sets the output's size and truncation on the task's end in
// end.
func withOutput(end []state.Payload, size int64, truncated bool) []state.Payload {
	out := make([]state.Payload, 0, len(end))
	for _, p := range end {
		switch v := p.(type) {
		case state.TaskCompleted:
			v.OutputBytes, v.Truncated = size, truncated
			p = v
		case state.TaskFailed:
			v.OutputBytes, v.Truncated = size, truncated
			p = v
		}
		out = append(out, p)
	}
	return out
}

// ended turns an execute reply into the task's end event.
func (w *worker) ended(t *state.Task, r kernel.Reply, lt *liveTask) state.Payload {
	if r.Status == "ok" {
		return state.TaskCompleted{ID: t.ID, ExecutionCount: r.ExecutionCount}
	}
	reason := state.FailError
	if lt.wasCancelled() {
		reason = state.FailCancelled
	}
	ename, evalue := r.EName, r.EValue
	if r.Status == "aborted" && ename == "" {
		ename, evalue = "Aborted", "the kernel aborted the execution"
	}
	return state.TaskFailed{ID: t.ID, Reason: reason, EName: ename, EValue: evalue, Traceback: stripAll(r.Traceback)}
}

func stripAll(tb []string) []string {
	out := make([]string, len(tb))
	for i, l := range tb {
		out[i] = stripANSI(l)
	}
	return out
}

// cancel carries out Manager.Cancel for a task of this session.
func (w *worker) cancel(ctx context.Context, id string) error {
	w.decide.Lock()
	defer w.decide.Unlock()
	t, ok := w.m.task(id)
	if !ok {
		return ErrTaskNotFound
	}
	if t.State.Final() {
		return nil
	}
	if err := w.m.append(ctx, w.key, state.TaskCancelled{ID: id}); err != nil {
		return err
	}
	if t.State != state.TaskStateRunning {
		return nil
	}
	w.mu.Lock()
	lt, cur, c, bound := w.current, w.currentID, w.client, w.bound
	w.mu.Unlock()
	if lt == nil || cur != id || c == nil {
		return nil // settled as cancelled when the worker gets to it
	}
	lt.setCancelled()
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Interrupt(ictx); err != nil {
		// The control channel did not answer: SIGINT the kernel itself,
		// identity-checked.
		w.log.Warn("interrupt_request failed; sending SIGINT", "error", err)
		if err := w.m.host.Signal(bound, syscall.SIGINT); err != nil {
			return fmt.Errorf("interrupt kernel: %w", err)
		}
	}
	go w.escalateCancel(id, bound)
	return nil
}

// escalateCancel kills the kernel of a cancelled task that is still running
// CancelGrace after its interrupt. An interrupt can reach the kernel before
// it starts the code, and then it is lost (or leaves the kernel wedged): a
// cancel must end the task all the same. The kill goes through the
// identity check; the service restarts the kernel, the loss of its state is
// recorded, and the task fails as cancelled.
func (w *worker) escalateCancel(id string, bound state.KernelRef) {
	t := time.NewTimer(w.m.opts.CancelGrace)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.ctx.Done():
		return
	}
	w.mu.Lock()
	still := w.currentID == id
	w.mu.Unlock()
	if !still {
		return
	}
	w.log.Warn("cancelled task still runs after its interrupt; killing its kernel", "task", id, "pid", bound.PID)
	if err := w.m.host.Signal(bound, syscall.SIGKILL); err != nil {
		w.log.Error("kill kernel of cancelled task", "task", id, "error", err)
	}
}

// internal runs code of Solo's own and returns its last stdout line as
// JSON into v.
func internal(ctx context.Context, c *kernel.Client, code string, v any) (kernel.Reply, error) {
	var mu sync.Mutex
	var out strings.Builder
	r, err := c.Execute(ctx, kernel.ExecuteRequest{Code: code}, func(o kernel.Output) {
		if o.Kind == kernel.OutputStream && o.Name == "stdout" {
			mu.Lock()
			out.WriteString(o.Text)
			mu.Unlock()
		}
	})
	if err != nil || r.Status != "ok" {
		return r, err
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		return kernel.Reply{Status: "error", EName: "SoloError", EValue: "cannot read the kernel's answer: " + err.Error()}, nil
	}
	return r, nil
}

func failed(t *state.Task, ename, evalue string, lt *liveTask) state.Payload {
	lt.addOutput(state.TaskOutput{Kind: "error", Text: ename + ": " + evalue})
	return state.TaskFailed{ID: t.ID, Reason: state.FailError, EName: ename, EValue: evalue}
}

// checkpoint pickles the kernel's variables to a temporary file, then
// signs them into the checkpoint file, atomically.
func (w *worker) checkpoint(ctx context.Context, c *kernel.Client, t *state.Task, lt *liveTask) ([]state.Payload, error) {
	dir := filepath.Dir(w.m.checkpointPath(w.key, t.Label))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return []state.Payload{failed(t, "CheckpointError", err.Error(), lt)}, nil
	}
	tmp := filepath.Join(dir, "."+t.ID+".pickle")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return []state.Payload{failed(t, "CheckpointError", err.Error(), lt)}, nil
	}
	defer os.Remove(tmp)
	err = w.m.kernelFile(w.key, f) // the kernel writes the pickle
	f.Close()
	if err != nil {
		return []state.Payload{failed(t, "CheckpointError", err.Error(), lt)}, nil
	}
	var res struct {
		Saved   []string `json:"saved"`
		Skipped []string `json:"skipped"`
	}
	r, err := internal(ctx, c, fmt.Sprintf(checkpointCode, pyString(tmp)), &res)
	if err != nil {
		return nil, err
	}
	if r.Status != "ok" {
		return []state.Payload{w.ended(t, r, lt)}, nil
	}
	payload, err := os.ReadFile(tmp)
	if err != nil {
		return []state.Payload{failed(t, "CheckpointError", err.Error(), lt)}, nil
	}
	h := CheckpointHeader{Tenant: w.key.Tenant, Session: w.key.Name, Label: t.Label}
	if err := WriteCheckpoint(w.m.checkpointPath(w.key, t.Label), w.m.key, h, payload); err != nil {
		return []state.Payload{failed(t, "CheckpointError", err.Error(), lt)}, nil
	}
	msg := fmt.Sprintf("checkpoint %q: saved %d names (%s)\n", t.Label, len(res.Saved), strings.Join(res.Saved, ", "))
	if len(res.Skipped) > 0 {
		msg += fmt.Sprintf("skipped %d that cannot be pickled: %s\n", len(res.Skipped), strings.Join(res.Skipped, ", "))
	}
	lt.addOutput(state.TaskOutput{Kind: "stream", Name: "stdout", Text: msg})
	return []state.Payload{
		state.SessionCheckpointed{Label: t.Label, Task: t.ID, Saved: nonNil(res.Saved), Skipped: res.Skipped, Bytes: int64(len(payload))},
		state.TaskCompleted{ID: t.ID},
	}, nil
}

// restore verifies a checkpoint, and only then hands it to the kernel.
func (w *worker) restore(ctx context.Context, c *kernel.Client, t *state.Task, lt *liveTask) ([]state.Payload, error) {
	h := CheckpointHeader{Tenant: w.key.Tenant, Session: w.key.Name, Label: t.Label}
	path := w.m.checkpointPath(w.key, t.Label)
	payload, err := ReadCheckpoint(path, w.m.key, h)
	if err != nil {
		name := "CheckpointRefused"
		if errors.Is(err, ErrCheckpointNotFound) {
			name = "CheckpointNotFound"
		}
		w.log.Warn("checkpoint refused", "label", t.Label, "error", err)
		return []state.Payload{failed(t, name, err.Error(), lt)}, nil
	}
	tmp := filepath.Join(filepath.Dir(path), "."+t.ID+".pickle")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return []state.Payload{failed(t, "CheckpointError", err.Error(), lt)}, nil
	}
	defer os.Remove(tmp)
	_, err = f.Write(payload)
	if err == nil {
		err = w.m.kernelFile(w.key, f) // the kernel reads the pickle
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return []state.Payload{failed(t, "CheckpointError", err.Error(), lt)}, nil
	}
	var res struct {
		Restored []string `json:"restored"`
	}
	r, err := internal(ctx, c, fmt.Sprintf(restoreCode, pyString(tmp)), &res)
	if err != nil {
		return nil, err
	}
	if r.Status != "ok" {
		return []state.Payload{w.ended(t, r, lt)}, nil
	}
	lt.addOutput(state.TaskOutput{Kind: "stream", Name: "stdout", Text: fmt.Sprintf("restored %d names from %q: %s\n", len(res.Restored), t.Label, strings.Join(res.Restored, ", "))})
	return []state.Payload{
		state.SessionRestored{Label: t.Label, Task: t.ID, Restored: nonNil(res.Restored)},
		state.TaskCompleted{ID: t.ID},
	}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
