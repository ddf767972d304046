package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/supervisor"
)

// loggerCmd is `solo _logger`, the log stamper the daemon starts beside a
// service whose spec asks for timestamps: it reads the service's output on
// stdin and appends it, each line stamped, to stdout (the log file). Not
// for users: hidden.
func (a *app) loggerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "_logger",
		Short:  "Stamp each line of stdin with the time and write it to stdout (the daemon's log stamper)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// It lives as long as the service's output does: signals meant
			// for a terminal or a group are not for it. Its end is the end
			// of its input.
			signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
			return supervisor.Stamp(os.Stdin, os.Stdout, time.Now)
		},
	}
}

// stamperArgv is how the daemon runs its log stamper: this very binary,
// as `solo _logger`.
func stamperArgv() ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("daemon: find own binary for the log stamper: %w", err)
	}
	return []string{exe, "_logger"}, nil
}
