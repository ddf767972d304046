package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/exitcode"
	"github.com/solo-rt/solo/pkg/wire"
)

// usageError marks a mistake in how solo was called: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(err error) error { return usageError{err} }

// namesRefusal makes the daemon's refusal of the names a spec gives a
// usage error, exit 2, as a bad flag is: its dependencies (after,
// requires: a name that is not a service of the tenant, the service
// itself, a cycle) and its nodes (a bad node name, or nodes given to a
// daemon that is not a cluster). Other refusals of a spec keep exit 1.
func namesRefusal(err error) error {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Code == wire.CodeInvalid {
		for _, f := range []string{"after", "requires", "nodes"} {
			if strings.HasSuffix(ae.Field, f) {
				return usagef(err)
			}
		}
	}
	return err
}

// exitCode maps an error to the contract's exit code.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitcode.OK
	case errors.As(err, &ue):
		return exitcode.Usage
	case errors.Is(err, client.ErrUnreachable):
		return exitcode.Unreachable
	case client.IsNotFound(err):
		return exitcode.NotFound
	case client.IsDenied(err):
		return exitcode.Denied
	case client.IsLimited(err):
		return exitcode.Limited
	}
	return exitcode.Error
}

// message words an error for the terminal, with a hint where one helps.
func message(err error) string {
	if errors.Is(err, client.ErrUnreachable) {
		return err.Error() + "\nis `solo daemon` running? Start it, or point --socket/--addr (SOLO_SOCKET/SOLO_ADDR) at it."
	}
	var ae *client.APIError
	if client.IsLimited(err) && errors.As(err, &ae) && ae.RetryAfter > 0 {
		return fmt.Sprintf("%s\nnothing was done; retry in %s", err, ae.RetryAfter)
	}
	return err.Error()
}
