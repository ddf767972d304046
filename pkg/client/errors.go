package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// ErrUnreachable is returned, wrapped with the socket or address and the
// dial error, when the daemon cannot be reached at all: nothing listens on
// the socket (or it does not exist), the TCP port refuses, or dialing
// timed out. No request was sent, so nothing was done. A CLI maps it to
// exit code 5.
var ErrUnreachable = errors.New("solo daemon unreachable")

// APIError is an error reply of the daemon. It is returned for every reply
// with a status of 400 or more.
type APIError struct {
	Status  int    // HTTP status
	Code    string // one of the wire.Code constants, e.g. "not_found"
	Message string // the daemon's message
	// Field names the field of the request at fault, when the daemon said.
	Field string
	// Problems lists what a failed database check found.
	Problems []string
	// Limit names the limit a 429 went over (a quota such as
	// max_services, or a rate such as rate_per_token), when the daemon said.
	Limit string
	// RetryAfter is the daemon's Retry-After, 0 if it sent none.
	RetryAfter time.Duration
}

// Error returns the message followed by the code, e.g.
// `service default/web: service not found (not_found)`.
func (e *APIError) Error() string {
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// IsNotFound reports whether err is a 404 reply: no such service.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Code == wire.CodeNotFound)
}

// IsDenied reports whether err is a 401 or 403 reply: the credentials are
// missing, unknown, or do not allow the request.
func IsDenied(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden)
}

// IsLimited reports whether err is a 429 reply: over a tenant's quota or
// a request rate (or, for an unauthenticated source, too many failed
// authentications). Nothing was done; [APIError.RetryAfter] says when to
// try again. A CLI maps it to exit code 6.
func IsLimited(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests
}

// IsInvalid reports whether err refuses the request as malformed or
// invalid: a reply with code invalid or too_large, or a tenant or name
// refused before sending (state.ErrInvalidName).
func IsInvalid(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code == wire.CodeInvalid || ae.Code == wire.CodeTooLarge
	}
	return errors.Is(err, state.ErrInvalidName)
}
