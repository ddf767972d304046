package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
	"github.com/solo-rt/solo/recovery"
)

// AuthError is what [Options.Authorize] returns (possibly wrapped) to refuse
// a request. Status should be 401 (no or bad credentials) or 403 (valid
// credentials, not allowed); 0 means 401. Code "" means the code of the
// status ([wire.CodeUnauthorized] or [wire.CodeDenied]). Msg is shown to the
// caller, so it must not contain the credential.
type AuthError struct {
	Status int
	Code   string
	Msg    string
}

// Error returns Msg.
func (e *AuthError) Error() string { return e.Msg }

// Errors the handlers return; they are mapped by [classify] like any other.
var (
	// errBadRequest wraps a malformed request: bad JSON, a bad query
	// parameter, a path that is not canonical.
	errBadRequest = errors.New("bad request")

	// errDenied is returned when a tenant-scoped principal asks for
	// something only an admin may do (db check, backup) or writes into
	// another tenant.
	errDenied = errors.New("denied")

	// errNoRoute is returned for a path that matches no route.
	errNoRoute = errors.New("no route")
)

// fieldError is a bad request about one named field or query parameter.
type fieldError struct {
	Field string
	Err   error
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *fieldError) Unwrap() error { return e.Err }

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, args...)...)
}

func badParam(name string, format string, args ...any) error {
	return &fieldError{Field: name, Err: badRequest(format, args...)}
}

// classify maps an error to its HTTP status and code. It is the only place
// that does: every handler returns its error and lets this decide.
func classify(err error) (status int, code string) {
	var (
		auth     *AuthError
		tooLarge *http.MaxBytesError
		limited  *limitedError
	)
	switch {
	case errors.As(err, &limited):
		return http.StatusTooManyRequests, wire.CodeLimited
	case errors.As(err, &auth):
		status = auth.Status
		if status == 0 {
			status = http.StatusUnauthorized
		}
		code = auth.Code
		if code == "" {
			code = wire.CodeUnauthorized
			if status == http.StatusForbidden {
				code = wire.CodeDenied
			}
		}
		return status, code
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, wire.CodeTooLarge
	case errors.Is(err, state.ErrQuota):
		return http.StatusTooManyRequests, wire.CodeLimited
	case errors.Is(err, solo.ErrDenied):
		// Before the bad requests: a spec the tenant's policy refuses is
		// both, and it is the policy that decides.
		return http.StatusForbidden, wire.CodeDenied
	case errors.Is(err, errBadRequest),
		errors.Is(err, state.ErrInvalidSpec),
		errors.Is(err, state.ErrInvalidName),
		errors.Is(err, state.ErrInvalidPolicy),
		errors.Is(err, solo.ErrUnknownKind),
		errors.Is(err, solo.ErrBadSignal),
		errors.Is(err, solo.ErrInvalidSecret),
		errors.Is(err, eventstore.ErrInvalid):
		return http.StatusBadRequest, wire.CodeInvalid
	case errors.Is(err, errDenied):
		return http.StatusForbidden, wire.CodeDenied
	case errors.Is(err, solo.ErrNotFound), errors.Is(err, solo.ErrSecretNotFound), errors.Is(err, errNoRoute), errors.Is(err, recovery.ErrNotDesired):
		return http.StatusNotFound, wire.CodeNotFound
	case errors.Is(err, eventstore.ErrConflict),
		errors.Is(err, solo.ErrRunning),
		errors.Is(err, solo.ErrHasDependents),
		errors.Is(err, solo.ErrNotRunning),
		errors.Is(err, solo.ErrVaultKeyMissing):
		return http.StatusConflict, wire.CodeConflict
	case errors.Is(err, eventstore.ErrNotWritten),
		errors.Is(err, eventstore.ErrUnavailable),
		errors.Is(err, capability.ErrNotSynced):
		return http.StatusServiceUnavailable, wire.CodeUnavailable
	case errors.Is(err, solo.ErrShuttingDown),
		errors.Is(err, solo.ErrClosed),
		errors.Is(err, eventstore.ErrClosed),
		errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, wire.CodeUnavailable
	case errors.Is(err, eventstore.ErrCorrupt):
		return http.StatusInternalServerError, wire.CodeCorrupt
	}
	return http.StatusInternalServerError, wire.CodeInternal
}

// errorBody builds the reply for err.
func errorBody(err error) (int, wire.ErrorBody) {
	status, code := classify(err)
	body := wire.ErrorBody{Error: err.Error(), Code: code}
	if errors.Is(err, eventstore.ErrNotWritten) {
		body.Error += " (nothing was changed; services keep running; free space on the data dir's disk, then retry)"
	} else if errors.Is(err, eventstore.ErrUnavailable) {
		body.Error += " (the cluster's etcd has no quorum from this node: the change may or may not have been made; retry once etcd answers, a retry is safe)"
	}
	var (
		fe    *state.FieldError
		po    *state.PolicyError
		pe    *fieldError
		ce    *eventstore.CheckError
		typed *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &fe):
		body.Field = fe.Field
	case errors.As(err, &po):
		body.Field = po.Field
	case errors.As(err, &pe):
		body.Field = pe.Field
	case errors.As(err, &typed):
		body.Field = typed.Field
	}
	if errors.As(err, &ce) {
		body.Problems = ce.Problems
	}
	if _, limit, _, ok := limitOf(err); ok {
		body.Limit = limit
	}
	return status, body
}

// writeJSONError writes err as a [wire.ErrorBody] with its status.
func writeJSONError(w http.ResponseWriter, err error) int {
	status, body := errorBody(err)
	writeJSON(w, status, body)
	return status
}

// writeJSON writes v as the whole reply.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(wire.ErrorBody{Error: "encode reply: " + err.Error(), Code: wire.CodeInternal})
	}
	h := w.Header()
	h.Set("Content-Type", wire.ContentTypeJSON)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
