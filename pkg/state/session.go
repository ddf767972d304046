package state

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/solo-rt/solo/eventstore/event"
)

// Session and task event types. Their envelopes have the session's tenant
// and name as tenant and subject; a task event names its task in its data.
const (
	TypeSessionCreated      EventType = "session_created"
	TypeSessionRemoved      EventType = "session_removed"
	TypeSessionKernelReady  EventType = "session_kernel_ready"
	TypeSessionCheckpointed EventType = "session_checkpointed"
	TypeSessionRestored     EventType = "session_restored"
	TypeSessionLost         EventType = "session_lost"
	TypeSessionMoved        EventType = "session_moved"
	TypeTaskSubmitted       EventType = "task_submitted"
	TypeTaskStarted         EventType = "task_started"
	TypeTaskCompleted       EventType = "task_completed"
	TypeTaskFailed          EventType = "task_failed"
	TypeTaskCancelled       EventType = "task_cancelled"
	TypeAssetAdded          EventType = "asset_added"
	TypeAssetRenewed        EventType = "asset_renewed"
	TypeAssetCollected      EventType = "asset_collected"
)

// SessionCreated (session_created) is the intent to keep a kernel for a
// session. Service names the Solo service that runs the kernel (in the
// session's tenant), deployed right after.
//
// Node, in a cluster, is the node that created the session: its kernel
// runs there and nowhere else (the service's spec names that node only),
// and only that node's manager runs its tasks. Empty on a single machine.
type SessionCreated struct {
	Kernel  string `json:"kernel"`
	Service string `json:"service"`
	Node    string `json:"node,omitempty"`
}

// SessionLost (session_lost) records, in a cluster, that the node a
// session runs on died (its lease is gone): its kernel and the kernel's
// variables are gone with it. The placement leader writes it, fenced,
// with the kill of the kernel service, instead of moving the kernel: a
// session is never restarted silently. Its running and pending tasks fail
// with reason node_lost; it takes no task until the user restarts it
// elsewhere ([SessionMoved]) or removes it.
type SessionLost struct {
	Node   string `json:"node"`
	Lease  int64  `json:"lease,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// SessionMoved (session_moved) restarts a lost session on Node, empty: a
// new kernel, none of the old variables, an empty queue; its checkpoints
// stay listed but their files were on the lost node. The kernel service
// is deployed again right after, on Node only.
type SessionMoved struct {
	Node string `json:"node"`
}

// SessionRemoved (session_removed) ends a session: its kernel is killed,
// and its pending and running tasks fail with reason session_removed.
type SessionRemoved struct {
	Reason string `json:"reason,omitempty"`
}

// SessionKernelReady (session_kernel_ready) says the session is connected
// to a new kernel process, identified like a service instance. StateLost
// is set when the session had a kernel before: this one starts empty, and
// the variables of the old one are gone.
type SessionKernelReady struct {
	PID        int    `json:"pid"`
	StartTicks uint64 `json:"start_ticks,omitempty"`
	BootID     string `json:"boot_id,omitempty"`
	StateLost  bool   `json:"state_lost,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// SessionCheckpointed (session_checkpointed) records a checkpoint written:
// the names saved, and those skipped because the kernel could not
// serialise them. Task is the task that wrote it.
type SessionCheckpointed struct {
	Label   string   `json:"label"`
	Task    string   `json:"task"`
	Saved   []string `json:"saved"`
	Skipped []string `json:"skipped,omitempty"`
	Bytes   int64    `json:"bytes"`
}

// SessionRestored (session_restored) records a checkpoint loaded into the
// kernel.
type SessionRestored struct {
	Label    string   `json:"label"`
	Task     string   `json:"task"`
	Restored []string `json:"restored"`
}

// TaskKind is what a task does.
type TaskKind string

// Task kinds.
const (
	TaskExec       TaskKind = ""           // run code
	TaskCheckpoint TaskKind = "checkpoint" // save the kernel's variables under Label
	TaskRestore    TaskKind = "restore"    // load the checkpoint Label
)

// TaskSubmitted (task_submitted) queues a task at the end of its session's
// queue. A retryable task that was running when the daemon died is run
// again; any other gets task_failed with reason interrupted.
type TaskSubmitted struct {
	ID        string   `json:"id"`
	Kind      TaskKind `json:"kind,omitempty"`
	Code      string   `json:"code,omitempty"`
	Label     string   `json:"label,omitempty"`
	Retryable bool     `json:"retryable,omitempty"`
}

// TaskStarted (task_started) is written before the code is sent to the
// kernel (I2): a task never runs without it. Attempt counts from 1; a
// retryable task runs again as the next attempt. PID is the kernel's.
type TaskStarted struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt"`
	PID     int    `json:"pid,omitempty"`
}

// TaskOutput is one output of a task. Outputs live in the task's output
// file (an asset of its session), not in the log: Outputs fields are only
// found in logs written before that, and are still folded and rendered.
type TaskOutput struct {
	Kind string `json:"kind"`           // stream, execute_result, display_data, error
	Name string `json:"name,omitempty"` // stdout or stderr, for a stream
	Text string `json:"text,omitempty"`
}

// TaskCompleted (task_completed) ends a task that ran without raising.
// OutputBytes is the size of its output file, which is bounded; Truncated
// says some output was dropped. Outputs is only set in logs written before
// outputs moved to files.
type TaskCompleted struct {
	ID             string       `json:"id"`
	ExecutionCount int          `json:"execution_count,omitempty"`
	OutputBytes    int64        `json:"output_bytes,omitempty"`
	Truncated      bool         `json:"truncated,omitempty"`
	Outputs        []TaskOutput `json:"outputs,omitempty"`
}

// FailReason says why a task failed.
type FailReason string

// Failure reasons.
const (
	FailError          FailReason = "error"           // the code raised (EName, EValue, Traceback)
	FailInterrupted    FailReason = "interrupted"     // it was running when the daemon died, and is not retryable
	FailCancelled      FailReason = "cancelled"       // cancelled while it ran: the kernel was interrupted
	FailKernelDied     FailReason = "kernel_died"     // the kernel died or stopped answering while it ran
	FailSessionRemoved FailReason = "session_removed" // the session was removed first
	FailNodeLost       FailReason = "node_lost"       // the session's node died (cluster mode)
)

// TaskFailed (task_failed) ends a task that did not complete. OutputBytes
// and Truncated are as in [TaskCompleted]; for a task interrupted by a
// daemon crash they say what its output file held when it was settled.
type TaskFailed struct {
	ID          string       `json:"id"`
	Reason      FailReason   `json:"reason"`
	Detail      string       `json:"detail,omitempty"`
	EName       string       `json:"ename,omitempty"`
	EValue      string       `json:"evalue,omitempty"`
	Traceback   []string     `json:"traceback,omitempty"`
	OutputBytes int64        `json:"output_bytes,omitempty"`
	Truncated   bool         `json:"truncated,omitempty"`
	Outputs     []TaskOutput `json:"outputs,omitempty"`
}

// TaskCancelled (task_cancelled) is the intent to cancel a task: a pending
// one never runs; a running one is interrupted and then fails with reason
// cancelled.
type TaskCancelled struct {
	ID string `json:"id"`
}

// AssetKind says what an asset is.
type AssetKind string

// Asset kinds.
const (
	// AssetOutput is a task's output file, tasks/ID.out; its id is the
	// task's.
	AssetOutput AssetKind = "output"
	// AssetFile is a regular file of the session's directory that a caller
	// marked as an asset.
	AssetFile AssetKind = "file"
)

// Valid reports whether k is a known kind.
func (k AssetKind) Valid() bool { return k == AssetOutput || k == AssetFile }

// AssetAdded (asset_added) makes a file of a session's directory one of
// the session's assets: kept while its lease runs, collected (deleted)
// once it expired. Path is relative to the session's directory. A task's
// output is added with its first task_started and is held while the task
// runs (ExpiresAt zero); its lease starts when the task ends
// (asset_renewed). A file is added with a lease.
type AssetAdded struct {
	ID        string    `json:"id"`
	Kind      AssetKind `json:"kind"`
	Path      string    `json:"path"`
	Size      int64     `json:"size,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// AssetRenewed (asset_renewed) extends an asset's lease to ExpiresAt: it
// was read, or its task ended. Size is its size then.
type AssetRenewed struct {
	ID        string    `json:"id"`
	Size      int64     `json:"size,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CollectReason says why an asset was collected.
type CollectReason string

// Collection reasons.
const (
	CollectLeaseExpired CollectReason = "lease_expired" // nobody read it for its whole lease
)

// AssetCollected (asset_collected) records an asset deleted by the sweep:
// an observed fact, recorded once its file is gone. Size is the file's
// size when it was deleted (its last known size if it was already gone).
type AssetCollected struct {
	ID     string        `json:"id"`
	Kind   AssetKind     `json:"kind"`
	Path   string        `json:"path"`
	Size   int64         `json:"size"`
	Reason CollectReason `json:"reason"`
}

func (SessionCreated) EventType() EventType      { return TypeSessionCreated }
func (SessionRemoved) EventType() EventType      { return TypeSessionRemoved }
func (SessionKernelReady) EventType() EventType  { return TypeSessionKernelReady }
func (SessionCheckpointed) EventType() EventType { return TypeSessionCheckpointed }
func (SessionRestored) EventType() EventType     { return TypeSessionRestored }
func (SessionLost) EventType() EventType         { return TypeSessionLost }
func (SessionMoved) EventType() EventType        { return TypeSessionMoved }
func (TaskSubmitted) EventType() EventType       { return TypeTaskSubmitted }
func (TaskStarted) EventType() EventType         { return TypeTaskStarted }
func (TaskCompleted) EventType() EventType       { return TypeTaskCompleted }
func (TaskFailed) EventType() EventType          { return TypeTaskFailed }
func (TaskCancelled) EventType() EventType       { return TypeTaskCancelled }
func (AssetAdded) EventType() EventType          { return TypeAssetAdded }
func (AssetRenewed) EventType() EventType        { return TypeAssetRenewed }
func (AssetCollected) EventType() EventType      { return TypeAssetCollected }

func (t TaskSubmitted) check() error {
	switch {
	case t.ID == "":
		return fmt.Errorf("%w: task id is empty", ErrInvalidEvent)
	case t.Kind != TaskExec && t.Kind != TaskCheckpoint && t.Kind != TaskRestore:
		return fmt.Errorf("%w: unknown task kind %q", ErrInvalidEvent, t.Kind)
	case t.Kind != TaskExec && ValidName(t.Label) != nil:
		return fmt.Errorf("%w: checkpoint label %q", ErrInvalidEvent, t.Label)
	}
	return nil
}

func (t TaskFailed) check() error {
	switch t.Reason {
	case FailError, FailInterrupted, FailCancelled, FailKernelDied, FailSessionRemoved, FailNodeLost:
		return nil
	}
	return fmt.Errorf("%w: unknown failure reason %q", ErrInvalidEvent, t.Reason)
}

func (a AssetAdded) check() error {
	if a.ID == "" {
		return fmt.Errorf("%w: asset id is empty", ErrInvalidEvent)
	}
	if !a.Kind.Valid() {
		return fmt.Errorf("%w: unknown asset kind %q", ErrInvalidEvent, a.Kind)
	}
	return checkAssetPath(a.Path)
}

func (a AssetRenewed) check() error {
	if a.ID == "" {
		return fmt.Errorf("%w: asset id is empty", ErrInvalidEvent)
	}
	return nil
}

func (a AssetCollected) check() error {
	switch {
	case a.ID == "":
		return fmt.Errorf("%w: asset id is empty", ErrInvalidEvent)
	case !a.Kind.Valid():
		return fmt.Errorf("%w: unknown asset kind %q", ErrInvalidEvent, a.Kind)
	case a.Reason != CollectLeaseExpired:
		return fmt.Errorf("%w: unknown collection reason %q", ErrInvalidEvent, a.Reason)
	}
	return checkAssetPath(a.Path)
}

// checkAssetPath refuses a path that is not local to a session's directory:
// absolute, empty, or escaping it with "..".
func checkAssetPath(p string) error {
	if !filepath.IsLocal(p) || filepath.Clean(p) != p {
		return fmt.Errorf("%w: asset path %q is not a clean path inside the session's directory", ErrInvalidEvent, p)
	}
	return nil
}

// sessionPayloads registers the session and task types with [Decode].
var sessionPayloads = map[EventType]func() Payload{
	TypeSessionCreated:      func() Payload { return new(SessionCreated) },
	TypeSessionRemoved:      func() Payload { return new(SessionRemoved) },
	TypeSessionKernelReady:  func() Payload { return new(SessionKernelReady) },
	TypeSessionCheckpointed: func() Payload { return new(SessionCheckpointed) },
	TypeSessionRestored:     func() Payload { return new(SessionRestored) },
	TypeSessionLost:         func() Payload { return new(SessionLost) },
	TypeSessionMoved:        func() Payload { return new(SessionMoved) },
	TypeTaskSubmitted:       func() Payload { return new(TaskSubmitted) },
	TypeTaskStarted:         func() Payload { return new(TaskStarted) },
	TypeTaskCompleted:       func() Payload { return new(TaskCompleted) },
	TypeTaskFailed:          func() Payload { return new(TaskFailed) },
	TypeTaskCancelled:       func() Payload { return new(TaskCancelled) },
	TypeAssetAdded:          func() Payload { return new(AssetAdded) },
	TypeAssetRenewed:        func() Payload { return new(AssetRenewed) },
	TypeAssetCollected:      func() Payload { return new(AssetCollected) },
}

func derefSession(p Payload) (Payload, bool) {
	switch v := p.(type) {
	case *SessionCreated:
		return *v, true
	case *SessionRemoved:
		return *v, true
	case *SessionKernelReady:
		return *v, true
	case *SessionCheckpointed:
		return *v, true
	case *SessionRestored:
		return *v, true
	case *SessionLost:
		return *v, true
	case *SessionMoved:
		return *v, true
	case *TaskSubmitted:
		return *v, true
	case *TaskStarted:
		return *v, true
	case *TaskCompleted:
		return *v, true
	case *TaskFailed:
		return *v, true
	case *TaskCancelled:
		return *v, true
	case *AssetAdded:
		return *v, true
	case *AssetRenewed:
		return *v, true
	case *AssetCollected:
		return *v, true
	}
	return p, false
}

// init adds the session and task types to the table [Decode] reads; the
// service world ([World.Apply]) passes over them, and [Sessions.Apply]
// folds them.
func init() { maps.Copy(newPayload, sessionPayloads) }

// TaskState is where a task is in its life.
type TaskState string

// Task states. Completed, failed and cancelled are final.
const (
	TaskStatePending   TaskState = "pending"
	TaskStateRunning   TaskState = "running"
	TaskStateCompleted TaskState = "completed"
	TaskStateFailed    TaskState = "failed"
	TaskStateCancelled TaskState = "cancelled"
)

// Final reports whether s is a state a task never leaves.
func (s TaskState) Final() bool {
	return s == TaskStateCompleted || s == TaskStateFailed || s == TaskStateCancelled
}

// Task is what the log says about one task.
type Task struct {
	ID        string   `json:"id"`
	Tenant    string   `json:"tenant"`
	Session   string   `json:"session"`
	Kind      TaskKind `json:"kind,omitempty"`
	Code      string   `json:"code,omitempty"`
	Label     string   `json:"label,omitempty"`
	Retryable bool     `json:"retryable,omitempty"`

	State        TaskState `json:"state"`
	SubmittedPos uint64    `json:"submitted_pos"`
	SubmittedAt  time.Time `json:"submitted_at"`
	Attempts     int       `json:"attempts,omitempty"`
	KernelPID    int       `json:"kernel_pid,omitempty"`
	StartedPos   uint64    `json:"started_pos,omitempty"`
	StartedAt    time.Time `json:"started_at,omitzero"`
	EndedPos     uint64    `json:"ended_pos,omitempty"`
	EndedAt      time.Time `json:"ended_at,omitzero"`

	CancelRequested bool `json:"cancel_requested,omitempty"`

	ExecutionCount int `json:"execution_count,omitempty"`
	// OutputBytes is the size of the task's output file when it ended,
	// Truncated whether its output went over the bound, and
	// OutputCollectedAt when the sweep deleted it (its lease expired).
	// Outputs is only set for tasks that ended before outputs moved to
	// files.
	OutputBytes       int64        `json:"output_bytes,omitempty"`
	Truncated         bool         `json:"truncated,omitempty"`
	OutputCollectedAt time.Time    `json:"output_collected_at,omitzero"`
	Outputs           []TaskOutput `json:"outputs,omitempty"`
	Reason            FailReason   `json:"reason,omitempty"`
	Detail            string       `json:"detail,omitempty"`
	EName             string       `json:"ename,omitempty"`
	EValue            string       `json:"evalue,omitempty"`
	Traceback         []string     `json:"traceback,omitempty"`
}

// Clone returns a deep copy of t.
func (t *Task) Clone() *Task {
	c := *t
	c.Outputs = slices.Clone(t.Outputs)
	c.Traceback = slices.Clone(t.Traceback)
	return &c
}

// KernelRef identifies a kernel process, as a service instance does.
type KernelRef struct {
	PID        int    `json:"pid"`
	StartTicks uint64 `json:"start_ticks,omitempty"`
	BootID     string `json:"boot_id,omitempty"`
}

// Checkpoint is the last checkpoint written under a label.
type Checkpoint struct {
	Label   string    `json:"label"`
	Pos     uint64    `json:"pos"`
	At      time.Time `json:"at"`
	Saved   []string  `json:"saved"`
	Skipped []string  `json:"skipped,omitempty"`
	Bytes   int64     `json:"bytes"`
}

// Session is what the log says about one session (tenant, name).
type Session struct {
	Tenant  string `json:"tenant"`
	Name    string `json:"name"`
	Kernel  string `json:"kernel"`
	Service string `json:"service"`

	CreatedPos uint64    `json:"created_pos"`
	CreatedAt  time.Time `json:"created_at"`
	Removed    bool      `json:"removed,omitempty"`
	RemovedPos uint64    `json:"removed_pos,omitempty"`

	// Node is the cluster node the session runs on (its session_created's,
	// or its last session_moved's); empty on a single machine. LostNode,
	// LostAt, LostPos and LostReason are its session_lost, until a
	// session_moved: the node died with its kernel.
	Node       string    `json:"node,omitempty"`
	LostNode   string    `json:"lost_node,omitempty"`
	LostAt     time.Time `json:"lost_at,omitzero"`
	LostPos    uint64    `json:"lost_pos,omitempty"`
	LostReason string    `json:"lost_reason,omitempty"`

	// Instance is the kernel service's last started instance (from
	// service_started of Service) and Exited whether it has exited since.
	Instance *KernelRef `json:"instance,omitempty"`
	Exited   bool       `json:"exited,omitempty"`
	// Bound is the kernel the session last connected to
	// (session_kernel_ready); Lost counts the times a kernel's state was
	// lost to a restart.
	Bound *KernelRef `json:"bound,omitempty"`
	Lost  int        `json:"lost,omitempty"`

	// Queue holds the ids of pending tasks, in submission order; Running
	// the id of the running task, "" if none.
	Queue   []string `json:"queue"`
	Running string   `json:"running,omitempty"`
	// Done counts the tasks that ended.
	Done int `json:"done"`

	Checkpoints map[string]Checkpoint `json:"checkpoints,omitempty"`
}

// Clone returns a deep copy of s.
func (s *Session) Clone() *Session {
	c := *s
	c.Queue = slices.Clone(s.Queue)
	if s.Instance != nil {
		i := *s.Instance
		c.Instance = &i
	}
	if s.Bound != nil {
		b := *s.Bound
		c.Bound = &b
	}
	c.Checkpoints = maps.Clone(s.Checkpoints)
	return &c
}

// Live reports whether the session exists and was not removed.
func (s *Session) Live() bool { return s != nil && !s.Removed }

// Runs reports whether the session's tasks run on node (this node's name,
// "" on a single machine): it is live, not lost, and node is its own.
func (s *Session) Runs(node string) bool { return s.Live() && s.LostNode == "" && s.Node == node }

// LostText says how a lost session was lost, for `solo session status`:
// "" when it is not.
func (s *Session) LostText() string {
	if s == nil || s.LostNode == "" {
		return ""
	}
	return fmt.Sprintf("lost: node %s died at %s; restart it elsewhere, empty, with `solo session restart %s`", s.LostNode, s.LostAt.UTC().Format(time.RFC3339), s.Name)
}

// AssetKey names an asset: its session's tenant and name, and its id.
type AssetKey struct {
	Tenant  string `json:"tenant"`
	Session string `json:"session"`
	ID      string `json:"id"`
}

// Asset is what the log says about one asset of a session that was not
// collected. Collected assets leave the projection (a collected output
// leaves its task's OutputCollectedAt).
type Asset struct {
	AssetKey
	Kind AssetKind `json:"kind"`
	Path string    `json:"path"` // relative to the session's directory
	Size int64     `json:"size"`
	// ExpiresAt is the end of its lease; zero while it is held (the
	// output of a task that has not ended).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	AddedPos  uint64    `json:"added_pos"`
	AddedAt   time.Time `json:"added_at"`
}

// Held reports whether a is kept whatever the time: the output of a task
// that has not ended, whose lease has not started.
func (a *Asset) Held() bool { return a.ExpiresAt.IsZero() }

// Sessions is the fold of the log's session and task events (and of the
// service_started and service_exited of the sessions' kernel services): the
// projection every reader of sessions goes through. Like [World] it is
// pure, deterministic and idempotent (I6), and not safe for concurrent
// use.
type Sessions struct {
	pos      uint64
	sessions map[Key]*Session
	tasks    map[string]*Task
	services map[Key]Key // kernel service -> session
	assets   map[AssetKey]*Asset
}

// NewSessions returns an empty projection.
func NewSessions() *Sessions {
	return &Sessions{sessions: map[Key]*Session{}, tasks: map[string]*Task{}, services: map[Key]Key{}, assets: map[AssetKey]*Asset{}}
}

// Pos returns the position of the last envelope folded.
func (ss *Sessions) Pos() uint64 { return ss.pos }

// Session returns the session (tenant, name), removed or not.
func (ss *Sessions) Session(tenant, name string) (*Session, bool) {
	s, ok := ss.sessions[Key{tenant, name}]
	return s, ok
}

// List returns every session, removed ones included, sorted by tenant and
// name.
func (ss *Sessions) List() []*Session {
	out := slices.Collect(maps.Values(ss.sessions))
	slices.SortFunc(out, func(a, b *Session) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Task returns the task id.
func (ss *Sessions) Task(id string) (*Task, bool) {
	t, ok := ss.tasks[id]
	return t, ok
}

// Asset returns an asset that was not collected.
func (ss *Sessions) Asset(k AssetKey) (*Asset, bool) {
	a, ok := ss.assets[k]
	return a, ok
}

// Assets returns the assets of session (tenant, name) that were not
// collected, in the order they were added; with name "" those of every
// session of every tenant (tenant "" too).
func (ss *Sessions) Assets(tenant, name string) []*Asset {
	var out []*Asset
	for _, a := range ss.assets {
		if name == "" || (a.Tenant == tenant && a.Session == name) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, compareAssets)
	return out
}

func compareAssets(a, b *Asset) int {
	return cmp.Or(cmp.Compare(a.AddedPos, b.AddedPos), cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Session, b.Session), cmp.Compare(a.ID, b.ID))
}

// SessionOfService returns the session whose kernel runs as service key.
func (ss *Sessions) SessionOfService(key Key) (Key, bool) {
	k, ok := ss.services[key]
	return k, ok
}

// Clone returns a deep copy of ss.
func (ss *Sessions) Clone() *Sessions {
	c := NewSessions()
	c.pos = ss.pos
	for k, s := range ss.sessions {
		c.sessions[k] = s.Clone()
	}
	for k, t := range ss.tasks {
		c.tasks[k] = t.Clone()
	}
	maps.Copy(c.services, ss.services)
	for k, a := range ss.assets {
		ca := *a
		c.assets[k] = &ca
	}
	return c
}

// sessionsJSON is how [Sessions] stands in a snapshot. The index of kernel
// services is derived from the sessions, not stored.
type sessionsJSON struct {
	Pos      uint64     `json:"pos"`
	Sessions []*Session `json:"sessions"`
	Tasks    []*Task    `json:"tasks"`
	Assets   []*Asset   `json:"assets,omitempty"`
}

// MarshalJSON encodes ss for a snapshot, sessions and tasks in a fixed
// order, so that equal projections give equal bytes.
func (ss *Sessions) MarshalJSON() ([]byte, error) {
	tasks := slices.Collect(maps.Values(ss.tasks))
	slices.SortFunc(tasks, func(a, b *Task) int {
		return cmp.Or(cmp.Compare(a.SubmittedPos, b.SubmittedPos), cmp.Compare(a.ID, b.ID))
	})
	return json.Marshal(sessionsJSON{Pos: ss.pos, Sessions: ss.List(), Tasks: tasks, Assets: ss.Assets("", "")})
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (ss *Sessions) UnmarshalJSON(b []byte) error {
	var v sessionsJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*ss = *NewSessions()
	ss.pos = v.Pos
	for _, s := range v.Sessions {
		if s == nil {
			return fmt.Errorf("%w: null session", ErrBadSnapshot)
		}
		k := Key{s.Tenant, s.Name}
		ss.sessions[k] = s
		ss.services[Key{s.Tenant, s.Service}] = k
	}
	for _, t := range v.Tasks {
		if t == nil {
			return fmt.Errorf("%w: null task", ErrBadSnapshot)
		}
		ss.tasks[t.ID] = t
	}
	for _, a := range v.Assets {
		if a == nil {
			return fmt.Errorf("%w: null asset", ErrBadSnapshot)
		}
		ss.assets[a.AssetKey] = a
	}
	return nil
}

// Apply folds one envelope into ss. Its rules:
//
//   - Envelopes at or below [Sessions.Pos] are skipped (I6); other events
//     than session, task and the kernel services' start and exit only
//     advance Pos.
//   - session_created of a name that is live is ignored; of a removed
//     name it starts a new session (its old tasks keep their ids).
//   - Task events need a live session (task_submitted) or a known task;
//     others are ignored. A final task never changes again.
//   - task_started takes a pending task (or a running one: a retry) to
//     running; task_completed and task_failed end a running or pending
//     task; task_cancelled ends a pending task (cancelled), and marks a
//     running one CancelRequested.
//   - session_removed fails the session's pending and running tasks with
//     reason session_removed.
//   - asset_added needs a live session; of an asset that exists it changes
//     nothing. asset_renewed and asset_collected need the asset, whatever
//     became of its session: assets outlive a removed session until they
//     are collected. asset_collected drops the asset, and marks a
//     collected output on its task.
//
// A known type whose data does not decode returns a [*DecodeError] and
// leaves ss unchanged.
func (ss *Sessions) Apply(env event.Envelope) error {
	if env.Pos <= ss.pos {
		return nil
	}
	t := EventType(env.Type)
	if _, ok := sessionPayloads[t]; !ok && t != TypeServiceStarted && t != TypeServiceExited {
		ss.pos = env.Pos
		return nil
	}
	p, err := Decode(env)
	if err != nil && !errors.Is(err, ErrUnknownType) {
		return err
	}
	at := env.Time.UTC()
	key := Key{env.Tenant, env.Subject}
	s := ss.sessions[key]
	live := s.Live()
	task := func(id string) *Task {
		tk := ss.tasks[id]
		if tk == nil || tk.State.Final() || tk.Tenant != key.Tenant || tk.Session != key.Name {
			return nil
		}
		return tk
	}
	switch p := p.(type) {
	case SessionCreated:
		if live {
			break
		}
		s = &Session{Tenant: key.Tenant, Name: key.Name, Kernel: p.Kernel, Service: p.Service, Node: p.Node, CreatedPos: env.Pos, CreatedAt: at, Queue: []string{}}
		ss.sessions[key] = s
		ss.services[Key{key.Tenant, p.Service}] = key
	case SessionRemoved:
		if !live {
			break
		}
		s.Removed, s.RemovedPos = true, env.Pos
		for _, id := range append(slices.Clone(s.Queue), s.Running) {
			if tk := task(id); tk != nil {
				ss.end(s, tk, env.Pos, at, TaskStateFailed)
				tk.Reason = FailSessionRemoved
			}
		}
		s.Queue, s.Running = []string{}, ""
	case SessionLost:
		if !live || s.LostNode != "" || p.Node != s.Node {
			break
		}
		s.LostNode, s.LostAt, s.LostPos, s.LostReason = p.Node, at, env.Pos, p.Reason
		for _, id := range append(slices.Clone(s.Queue), s.Running) {
			if tk := task(id); tk != nil {
				ss.end(s, tk, env.Pos, at, TaskStateFailed)
				tk.Reason, tk.Detail = FailNodeLost, "node "+p.Node+" died"
			}
		}
		s.Queue, s.Running = []string{}, ""
	case SessionMoved:
		if !live || s.LostNode == "" {
			break
		}
		s.Node, s.LostNode, s.LostAt, s.LostPos, s.LostReason = p.Node, "", time.Time{}, 0, ""
		s.Instance, s.Exited, s.Bound = nil, false, nil
	case SessionKernelReady:
		if !live {
			break
		}
		s.Bound = &KernelRef{PID: p.PID, StartTicks: p.StartTicks, BootID: p.BootID}
		if p.StateLost {
			s.Lost++
		}
	case SessionCheckpointed:
		if !live {
			break
		}
		if s.Checkpoints == nil {
			s.Checkpoints = map[string]Checkpoint{}
		}
		s.Checkpoints[p.Label] = Checkpoint{Label: p.Label, Pos: env.Pos, At: at, Saved: p.Saved, Skipped: p.Skipped, Bytes: p.Bytes}
	case SessionRestored:
	case TaskSubmitted:
		if !live || ss.tasks[p.ID] != nil {
			break
		}
		ss.tasks[p.ID] = &Task{ID: p.ID, Tenant: key.Tenant, Session: key.Name, Kind: p.Kind, Code: p.Code, Label: p.Label,
			Retryable: p.Retryable, State: TaskStatePending, SubmittedPos: env.Pos, SubmittedAt: at}
		s.Queue = append(s.Queue, p.ID)
	case TaskStarted:
		tk := task(p.ID)
		if !live || tk == nil {
			break
		}
		if tk.State == TaskStatePending {
			s.Queue = slices.DeleteFunc(s.Queue, func(id string) bool { return id == p.ID })
		}
		tk.State, tk.Attempts, tk.KernelPID, tk.StartedPos, tk.StartedAt = TaskStateRunning, p.Attempt, p.PID, env.Pos, at
		s.Running = p.ID
	case TaskCompleted:
		if tk := task(p.ID); live && tk != nil {
			ss.end(s, tk, env.Pos, at, TaskStateCompleted)
			tk.ExecutionCount, tk.OutputBytes, tk.Truncated, tk.Outputs = p.ExecutionCount, p.OutputBytes, p.Truncated, p.Outputs
		}
	case TaskFailed:
		if tk := task(p.ID); live && tk != nil {
			ss.end(s, tk, env.Pos, at, TaskStateFailed)
			tk.Reason, tk.Detail, tk.EName, tk.EValue, tk.Traceback = p.Reason, p.Detail, p.EName, p.EValue, p.Traceback
			tk.OutputBytes, tk.Truncated, tk.Outputs = p.OutputBytes, p.Truncated, p.Outputs
		}
	case TaskCancelled:
		tk := task(p.ID)
		if !live || tk == nil {
			break
		}
		if tk.State == TaskStatePending {
			ss.end(s, tk, env.Pos, at, TaskStateCancelled)
		} else {
			tk.CancelRequested = true
		}
	case AssetAdded:
		ak := AssetKey{key.Tenant, key.Name, p.ID}
		if !live || ss.assets[ak] != nil {
			break
		}
		ss.assets[ak] = &Asset{AssetKey: ak, Kind: p.Kind, Path: p.Path, Size: p.Size, ExpiresAt: p.ExpiresAt.UTC(), AddedPos: env.Pos, AddedAt: at}
	case AssetRenewed:
		if a := ss.assets[AssetKey{key.Tenant, key.Name, p.ID}]; a != nil {
			a.Size, a.ExpiresAt = p.Size, p.ExpiresAt.UTC()
		}
	case AssetCollected:
		ak := AssetKey{key.Tenant, key.Name, p.ID}
		a := ss.assets[ak]
		if a == nil {
			break
		}
		delete(ss.assets, ak)
		if tk := ss.tasks[p.ID]; a.Kind == AssetOutput && tk != nil && tk.Tenant == key.Tenant && tk.Session == key.Name {
			tk.OutputCollectedAt = at
		}
	case Started:
		if sk, ok := ss.services[key]; ok {
			if s := ss.sessions[sk]; s.Live() && s.Service == key.Name {
				s.Instance = &KernelRef{PID: p.PID, StartTicks: p.StartTicks, BootID: p.BootID}
				s.Exited = false
			}
		}
	case Exited:
		if sk, ok := ss.services[key]; ok {
			if s := ss.sessions[sk]; s.Live() && s.Instance != nil && s.Instance.PID == p.PID {
				s.Exited = true
			}
		}
	}
	ss.pos = env.Pos
	return nil
}

// end makes tk final.
func (ss *Sessions) end(s *Session, tk *Task, pos uint64, at time.Time, st TaskState) {
	if tk.State == TaskStatePending {
		s.Queue = slices.DeleteFunc(s.Queue, func(id string) bool { return id == tk.ID })
	}
	if s.Running == tk.ID {
		s.Running = ""
	}
	tk.State, tk.EndedPos, tk.EndedAt = st, pos, at
	s.Done++
}
