package wire

// Error codes, the "code" of every [ErrorBody]. The set is closed: a client
// may switch on it. Each code has one HTTP status, except [CodeUnavailable]
// and [CodeInvalid], which also answer 405 (wrong method) and the not-ready
// 503 of /readyz.
const (
	CodeInvalid      = "invalid"      // 400 (405 for a wrong method): the request is malformed or names an invalid field
	CodeUnauthorized = "unauthorized" // 401: no or unknown credentials
	CodeDenied       = "denied"       // 403: the credentials do not allow this request
	CodeNotFound     = "not_found"    // 404: no such service (or route)
	CodeConflict     = "conflict"     // 409: an expected version did not match, or the service's state forbids the request (remove of a running service, signal of one with no process)
	CodeTooLarge     = "too_large"    // 413: the body is over the server's limit
	CodeThrottled    = "throttled"    // 429: the source failed to authenticate too often; Retry-After says when to try again
	CodeLimited      = "limited"      // 429: over a tenant's quota or a request rate (ErrorBody.Limit names it); nothing was done; Retry-After says when to try again
	CodeUnavailable  = "unavailable"  // 503: shutting down, closed, not ready, or the event log cannot be written (disk full)
	CodeCorrupt      = "corrupt"      // 500: the event log is damaged
	CodeInternal     = "internal"     // 500: anything else
)

// ErrorBody is the JSON body of every error reply.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// Field names the field of the request at fault, when one is known
	// (the JSON name of a state.Spec field, a query parameter, or the path
	// of an apply entry's field such as "services[3].command").
	Field string `json:"field,omitempty"`
	// Problems lists what a failed check found (code corrupt).
	Problems []string `json:"problems,omitempty"`
	// Limit names the limit a request went over (code limited): a quota
	// (max_services, max_sessions, max_tasks) or a rate (rate_per_tenant,
	// rate_per_token).
	Limit string `json:"limit,omitempty"`
}

// Media types of the API's replies beyond JSON.
const (
	ContentTypeJSON   = "application/json"
	ContentTypeNDJSON = "application/x-ndjson"     // GET /v1/events: one event envelope per line
	ContentTypeSSE    = "text/event-stream"        // GET /v1/events with Accept: text/event-stream
	ContentTypeBackup = "application/octet-stream" // GET /v1/db/backup: a copy of the database file
)
