package session

import "errors"

// Errors about what a caller asked for. Nothing is written when one is
// returned.
var (
	// ErrNotFound is returned for a session that does not exist (or was
	// removed).
	ErrNotFound = errors.New("session not found")

	// ErrTaskNotFound is returned by [Manager.Task], [Manager.Cancel],
	// [Manager.Wait] and [Manager.Output] for an unknown task id.
	ErrTaskNotFound = errors.New("task not found")

	// ErrExists is returned by [Manager.Create] for a session that exists.
	ErrExists = errors.New("session exists")

	// ErrInvalid is returned for an invalid name, kernel, label or code
	// (too large, say).
	ErrInvalid = errors.New("invalid session request")

	// ErrCollected is returned by [Manager.OpenOutput] and
	// [Manager.Output] for a task whose output was collected: its lease
	// expired, nobody having read it for [Options.AssetTTL].
	ErrCollected = errors.New("output collected")

	// ErrLost is returned for a task submitted to a session whose node
	// died (cluster mode: see [state.SessionLost]); [Manager.Restart]
	// runs it again elsewhere, empty.
	ErrLost = errors.New("session lost")

	// ErrNotLost is returned by [Manager.Restart] for a session that runs.
	ErrNotLost = errors.New("session not lost")

	// ErrElsewhere is returned for what only the node a session runs on
	// has (its tasks' output files, its assets), asked of another node.
	ErrElsewhere = errors.New("kept on another node")

	// ErrClosed is returned by every method after [Manager.Close].
	ErrClosed = errors.New("session manager closed")
)

// Errors about checkpoints.
var (
	// ErrCheckpointNotFound is returned when no checkpoint has the label.
	ErrCheckpointNotFound = errors.New("checkpoint not found")

	// ErrCheckpointRefused is returned by [ReadCheckpoint] for a checkpoint
	// that does not verify: truncated, tampered with, signed with another
	// key, or written for another session or label. None of it is loaded.
	ErrCheckpointRefused = errors.New("checkpoint refused")
)
