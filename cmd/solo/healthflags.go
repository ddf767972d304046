package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
)

// healthFlags are deploy's --health-* and --watchdog flags.
type healthFlags struct {
	h        state.HealthSpec
	exec     string
	interval time.Duration
	timeout  time.Duration
	watchdog time.Duration
}

// healthFlagNames maps a health field to its flag, for errors.
var healthFlagNames = map[string]string{
	"health.http": "--health-http", "health.tcp": "--health-tcp", "health.exec": "--health-exec",
	"health.interval": "--health-interval", "health.timeout": "--health-timeout",
	"health.retries": "--health-retries", "health.watchdog": "--watchdog",
	"health": "--health-http|--health-tcp|--health-exec|--watchdog",
}

func addHealthFlags(cmd *cobra.Command) *healthFlags {
	hf := &healthFlags{}
	f := cmd.Flags()
	f.StringVar(&hf.h.HTTP, "health-http", "", "once ready, GET this URL every --health-interval; restart as unhealthy after --health-retries answers other than 2xx/3xx in a row")
	f.StringVar(&hf.h.TCP, "health-tcp", "", "once ready, connect to HOST:PORT every --health-interval; restart as unhealthy after --health-retries failures in a row")
	f.StringVar(&hf.exec, "health-exec", "", "once ready, run this command (split on blanks, no shell; as the service, in its cgroup) every --health-interval; restart as unhealthy after --health-retries non-zero exits in a row")
	f.DurationVar(&hf.interval, "health-interval", 0, "time between two health probes (default 10s)")
	f.DurationVar(&hf.timeout, "health-timeout", 0, "longest a health probe may take, at most the interval (default 2s)")
	f.IntVar(&hf.h.Retries, "health-retries", 0, "failed health probes in a row that make the service unhealthy (default 3)")
	f.DurationVar(&hf.watchdog, "watchdog", 0, "with --notify: restart as unhealthy when the service sends no WATCHDOG=1 for this long (systemd's WatchdogSec; it gets WATCHDOG_USEC)")
	return hf
}

// apply sets spec.Health from the flags, if any was given. A bad value is
// a usage error naming the flag; nothing is sent. An explicit zero is
// refused (the spec reads zero as the default).
func (hf *healthFlags) apply(cmd *cobra.Command, spec *state.Spec) error {
	fl := cmd.Flags()
	any := false
	for _, f := range []string{"health-http", "health-tcp", "health-exec", "health-interval", "health-timeout", "health-retries", "watchdog"} {
		any = any || fl.Changed(f)
	}
	if !any {
		return nil
	}
	for flag, d := range map[string]time.Duration{"health-interval": hf.interval, "health-timeout": hf.timeout, "watchdog": hf.watchdog} {
		if fl.Changed(flag) && d <= 0 {
			return usagef(fmt.Errorf("--%s %s: must be > 0", flag, d))
		}
	}
	if fl.Changed("health-retries") && hf.h.Retries < 1 {
		return usagef(fmt.Errorf("--health-retries %d: must be at least 1", hf.h.Retries))
	}
	h := hf.h
	h.Interval, h.Timeout, h.Watchdog = state.Duration(hf.interval), state.Duration(hf.timeout), state.Duration(hf.watchdog)
	if fl.Changed("health-exec") {
		h.Exec = strings.Fields(hf.exec)
		if h.Exec == nil {
			h.Exec = []string{}
		}
	}
	spec.Health = &h
	n := spec.Clone()
	n.Normalize()
	if fe := new(state.FieldError); errors.As(n.Validate(), &fe) && healthFlagNames[fe.Field] != "" {
		return usagef(fmt.Errorf("%s: %s", healthFlagNames[fe.Field], fe.Problem))
	}
	return nil
}
