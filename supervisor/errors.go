package supervisor

import (
	"errors"
	"fmt"
)

// Errors about process identity (identity.go). Check them with [errors.Is]:
// they always come wrapped with the operation and the pid.
var (
	// ErrNoProcess is returned when the process named by a pid does not exist
	// (it exited and was reaped), by [ReadIdentity], [Verify], [Signal],
	// [SignalGroup], [ReadEnvVar], [WatchPID] and [Adopt]. [Stop] treats it as
	// "already gone", not as a failure.
	ErrNoProcess = errors.New("no such process")

	// ErrNotSameProcess is returned by [Verify] (and so by [Signal],
	// [SignalGroup] and [Adopt]) when a process lives at the recorded pid but
	// it is not the recorded one: its start time differs (the pid was
	// recycled) or the machine has rebooted since the record was made. The
	// live process is never signalled.
	ErrNotSameProcess = errors.New("pid belongs to a different process")

	// ErrInvalidPID is returned when an [Identity] has a pid below 2. Such a
	// pid can never be a service, and passing it to kill(2) as a process
	// group (0 or -1) would signal the daemon's own group or every process.
	ErrInvalidPID = errors.New("invalid pid")

	// ErrNotGroupLeader is returned by [SignalGroup] and
	// [Process.SignalGroup] when the process is not the leader of its own
	// process group (pgid != pid), so "its group" is not ours to signal.
	// Processes made by [Start] always lead their own group.
	ErrNotGroupLeader = errors.New("process is not a process group leader")
)

// Errors about watching, reaping and stopping (pidfd.go, start.go, stop.go).
var (
	// ErrNotExited is returned by [Watch.Reap] and [Process.Finish] when the
	// process has not exited yet. Nothing was signalled or reaped.
	ErrNotExited = errors.New("process has not exited")

	// ErrWatchClosed is returned by [Watch.Wait] and [Watch.Reap] after
	// [Watch.Close] (or [Process.Close]), including a Wait that was blocked
	// when Close was called.
	ErrWatchClosed = errors.New("watch closed")

	// ErrUnhealthy is wrapped by the Err of the [Exited] of an attempt the
	// loop stopped because its health check failed for good (see
	// [ServiceConfig.Health]), with the check's last error.
	ErrUnhealthy = errors.New("unhealthy")

	// ErrNoArgv is returned by [Start] when [StartOptions.Argv] is empty.
	ErrNoArgv = errors.New("empty argv")

	// ErrPipeOutput is returned by [Start] when [StartOptions.Output] is a
	// pipe or a socket: a service must write to a file, so that it neither
	// dies of SIGPIPE nor loses output when the daemon dies.
	ErrPipeOutput = errors.New("output is a pipe or socket")

	// ErrKillTimeout is returned by [Stop] when the process did not exit
	// within [KillWait] after SIGKILL (for example it is stuck in
	// uninterruptible sleep). The process may still exit later; its
	// [Process] is still usable for [Process.Wait] and [Process.Finish].
	ErrKillTimeout = errors.New("process did not exit after SIGKILL")

	// ErrTooManyFiles is wrapped by the errors of [Start], [Adopt] and
	// [WatchPID] when the daemon or the system has no open file left for
	// the process's pidfd or its start: the error names the limit and how
	// to raise it (see [FileLimit]).
	ErrTooManyFiles = errors.New("too many open files")
)

// ErrNotMarker is returned, wrapped, by [ParseMarker] for a value that
// [Marker.String] does not write (marker.go).
var ErrNotMarker = errors.New("not a Solo marker")

// Errors about log files (logfile.go).
var (
	// ErrInvalidKey is returned by the [Logs] methods when a key is empty,
	// absolute, or has an empty, "." or ".." element, or a NUL byte: a key
	// must name a file inside the log directory.
	ErrInvalidKey = errors.New("invalid log key")

	// ErrLogsClosed is returned by the [Logs] methods after [Logs.Close],
	// and by a [Logs.Follow] that was running when Close was called.
	ErrLogsClosed = errors.New("logs closed")

	// ErrLogDropped is reported (wrapped, to the [LogOptions] logger and by
	// [Logs.Check]) when a rotation could not keep a copy of a log because
	// its disk was full: the log was truncated and its bytes are gone.
	ErrLogDropped = errors.New("log dropped: disk full")
)

// ProcessError is a failure of an operation on one process. Its Err is
// usually one of the sentinel errors above, or a system error.
type ProcessError struct {
	Op  string // "verify", "signal", "read identity", ...
	PID int
	Err error
}

// Error implements error.
func (e *ProcessError) Error() string {
	return fmt.Sprintf("%s pid %d: %v", e.Op, e.PID, e.Err)
}

// Unwrap returns e.Err.
func (e *ProcessError) Unwrap() error { return e.Err }

// Errors about who a process runs as (credential.go).
var (
	// ErrUnknownUser is returned by [LookupAccount] for a user that is in
	// neither the passwd file nor NSS.
	ErrUnknownUser = errors.New("unknown user")

	// ErrUnknownGroup is returned by [LookupAccount] and [LookupGroup] for a
	// group that is in neither the group file nor NSS.
	ErrUnknownGroup = errors.New("unknown group")
)
