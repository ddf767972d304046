// Package exitcode is the one set of exit codes of the solo binary, the
// CLI contract of DESIGN.md, for its commands and for the daemon alike.
// Scripts switch on them; they never change meaning.
//
// [Limited] means nothing was done because a limit of the caller's tenant
// or token was reached: a quota (max_services, max_sessions, max_tasks) or
// a request rate. The CLI prints the limit and when to retry; a script may
// wait and retry, or ask the operator to raise the limit.
//
// The daemon exits [OK] after a drain in which every service stopped
// within its time, and [Error] after one that had to kill a service, or
// could not record or close its log: a forced drain is a failure to stop
// cleanly, not a code of its own.
package exitcode

const (
	OK          = 0 // success; a clean drain
	Error       = 1 // any failure not below; a drain that had to kill or failed
	Usage       = 2 // the command line is wrong: unknown command or flag, missing argument
	NotFound    = 3 // no such service, session, task or token
	Denied      = 4 // the token may not do this
	Unreachable = 5 // no daemon answers on the socket or address
	Limited     = 6 // over a tenant's quota or a request rate (HTTP 429): nothing was done; retry later
)
