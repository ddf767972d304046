package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/internal/witness"
	"github.com/solo-rt/solo/supervisor"
)

// witnessCmd is `solo _witness`, the observer of the cluster tests
// (package internal/witness): it prints its addresses as one line of JSON
// on stdout, then records reports until SIGTERM or SIGINT. Not for users:
// hidden.
func (a *app) witnessCmd() *cobra.Command {
	var host string
	var window time.Duration
	cmd := &cobra.Command{
		Use:    "_witness",
		Short:  "Record the reports of `solo _report` instances and answer the cluster tests (a test tool)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if window <= 0 {
				return usagef(fmt.Errorf("--window must be positive, got %s", window))
			}
			s, err := witness.Listen(host, &witness.Options{Window: window})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if err := json.NewEncoder(cmd.OutOrStdout()).Encode(s.Addrs()); err != nil {
				s.Close()
				return err
			}
			return s.Serve(ctx)
		},
	}
	cmd.Flags().StringVar(&host, "listen", "127.0.0.1", "host to listen on (the ports are chosen by the system)")
	cmd.Flags().DurationVar(&window, "window", witness.DefaultWindow, "how long an instance stays live without a report")
	return cmd
}

// reportCmd is `solo _report`, the service the cluster tests deploy: it
// reports (service, node, pid, fence) to a witness every interval until it
// is signalled, whether or not the witness is there. Not for users:
// hidden.
func (a *app) reportCmd() *cobra.Command {
	var addr, service, node string
	var interval time.Duration
	cmd := &cobra.Command{
		Use:    "_report",
		Short:  "Report this instance to a `solo _witness` every interval (a test tool)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := reportOf(service, node, os.Getenv("SOLO_FENCE"), os.Getenv(supervisor.MarkerEnv))
			if err != nil {
				return usagef(err)
			}
			if addr == "" {
				return usagef(fmt.Errorf("--witness (env SOLO_WITNESS) is required: the witness's report address, host:port"))
			}
			if interval <= 0 {
				return usagef(fmt.Errorf("--interval must be positive, got %s", interval))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return witness.Send(ctx, addr, r, interval)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "witness", os.Getenv("SOLO_WITNESS"), "the witness's report address, host:port (env SOLO_WITNESS)")
	f.StringVar(&service, "service", "", "service name to report (default: tenant/name from the SOLO_SERVICE marker Solo sets)")
	f.StringVar(&node, "node", os.Getenv("SOLO_NODE"), "node name to report (env SOLO_NODE)")
	f.DurationVar(&interval, "interval", witness.DefaultInterval, "time between reports")
	return cmd
}

// reportOf builds the report a `solo _report` sends: the service named by
// the flag, else by the marker Solo gave the process; the fence from
// SOLO_FENCE (0 when unset).
func reportOf(service, node, fence, marker string) (witness.Report, error) {
	r := witness.Report{Service: service, Node: node, PID: os.Getpid()}
	if r.Service == "" {
		m, err := supervisor.ParseMarker(marker)
		if err != nil {
			return r, fmt.Errorf("--service is required outside a Solo service (no valid %s marker)", supervisor.MarkerEnv)
		}
		r.Service = m.Tenant + "/" + m.Name
	}
	if fence != "" {
		f, err := strconv.ParseInt(fence, 10, 64)
		if err != nil || f < 0 {
			return r, fmt.Errorf("SOLO_FENCE must be a non-negative integer, got %q", fence)
		}
		r.Fence = f
	}
	return r, nil
}
