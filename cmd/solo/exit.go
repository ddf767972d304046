package main

import (
	"errors"

	"github.com/solo-rt/solo/pkg/client"
)

// Exit codes of the CLI contract (DESIGN.md).
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitDenied      = 4
	exitUnreachable = 5
)

// usageError marks a mistake in how solo was called: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(err error) error { return usageError{err} }

// exitCode maps an error to the contract's exit code.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, client.ErrUnreachable):
		return exitUnreachable
	case client.IsNotFound(err):
		return exitNotFound
	case client.IsDenied(err):
		return exitDenied
	}
	return exitError
}

// message words an error for the terminal, with a hint where one helps.
func message(err error) string {
	if errors.Is(err, client.ErrUnreachable) {
		return err.Error() + "\nis `solo daemon` running? Start it, or point --socket/--addr (SOLO_SOCKET/SOLO_ADDR) at it."
	}
	return err.Error()
}
