package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/client"
)

// app holds the global flags and the streams every command writes to.
type app struct {
	dataDir, socket, addr, token string
	json                         bool
	timeout                      time.Duration
	waitDaemon                   time.Duration

	stdin          io.Reader
	stdout, stderr io.Writer
	exit           int // set by a command that succeeded but must exit non-zero (daemon)
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "solo",
		Short: "Solo: an event-sourced service supervisor",
		Long: `Solo runs services and records every lifecycle fact in an append-only log.
Run "solo daemon", then deploy, list, inspect, stop, start, restart, signal
and remove services with the other commands.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Root takes no arguments of its own: anything left is a mistyped
		// command, a usage error.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef(fmt.Errorf("unknown command %q (see solo --help)", args[0]))
			}
			return nil
		},
		RunE:    func(cmd *cobra.Command, args []string) error { return cmd.Help() },
		Version: buildVersion(),
	}
	root.SetVersionTemplate("solo {{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef(fmt.Errorf("%w (see %s --help)", err, c.CommandPath()))
	})
	f := root.PersistentFlags()
	f.StringVar(&a.dataDir, "data-dir", envOr("SOLO_DATA_DIR", defaultDataDir()), "directory holding solo.db, solo.sock and logs/ (env SOLO_DATA_DIR)")
	f.StringVar(&a.socket, "socket", os.Getenv("SOLO_SOCKET"), "daemon's unix socket (env SOLO_SOCKET; default <data-dir>/solo.sock)")
	f.StringVar(&a.addr, "addr", os.Getenv("SOLO_ADDR"), "daemon's TCP address, host:port (env SOLO_ADDR)")
	f.StringVar(&a.token, "token", "", "capability token (env SOLO_TOKEN)")
	f.BoolVar(&a.json, "json", false, "print JSON")
	f.DurationVar(&a.timeout, "timeout", 30*time.Second, "how long a request may take")
	f.DurationVar(&a.waitDaemon, "wait-daemon", defaultWaitDaemon, "how long to wait for a daemon whose socket does not answer yet (one just started); 0 not to")

	root.AddCommand(
		a.daemonCmd(),
		a.deployCmd(),
		a.killCmd(),
		a.startCmd(),
		a.restartCmd(),
		a.signalCmd(),
		a.rmCmd(),
		a.versionCmd(),
		a.lsCmd(),
		a.nodesCmd(),
		a.drainCmd(),
		a.keeperCmd(),
		a.statusCmd(),
		a.whyCmd(),
		a.loggerCmd(),
		a.witnessCmd(),
		a.reportCmd(),
		a.logsCmd(),
		a.eventsCmd(),
		a.dbCmd(),
		a.applyCmd(),
		a.recoverCmd(),
		a.verifyCmd(),
		a.sessionCmd(),
		a.execCmd(),
		a.taskCmd(),
		a.tokenCmd(),
		a.secretCmd(),
		a.tenantCmd(),
	)
	return root
}

// defaultDataDir is $XDG_STATE_HOME/solo, else ~/.local/state/solo.
func defaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "solo")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "solo")
	}
	return "solo"
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (a *app) socketPath() string {
	if a.socket != "" {
		return a.socket
	}
	return filepath.Join(a.dataDir, "solo.sock")
}

// defaultWaitDaemon is how long a command waits for the socket of a daemon
// that may be starting, when nothing shows one is: `solo daemon &` and a
// command right after it race to start.
const defaultWaitDaemon = 2 * time.Second

// awaitDaemon returns once the daemon's socket accepts a connection, or
// when waiting longer is pointless: the socket (a local one; --addr is
// not waited for) refuses or is missing for --wait-daemon, and no process
// holds the data dir's log (a daemon that holds it is recovering, and is
// waited for up to --timeout). The command then fails as it would have,
// with exit 5.
func (a *app) awaitDaemon(ctx context.Context) {
	if a.addr != "" || a.waitDaemon <= 0 {
		return
	}
	sock, db := a.socketPath(), filepath.Join(a.dataDir, "solo.db")
	began := time.Now()
	for {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		waited := time.Since(began)
		if waited >= a.timeout || waited >= a.waitDaemon && eventstore.LockHolder(db) == 0 {
			return
		}
		// Nothing to wait on but the socket's file and its listen: a
		// short sleep between dials, bounded as above.
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// client connects to the daemon: TCP when --addr is set, else the socket,
// once it answers (see awaitDaemon).
func (a *app) client() (*client.Client, error) {
	a.awaitDaemon(context.Background())
	token := a.token
	if token == "" {
		token = os.Getenv("SOLO_TOKEN")
	}
	return client.New(client.Options{Socket: a.socketPath(), Addr: a.addr, Token: token, Timeout: a.timeout})
}

// connect returns a client and a context bounded by --timeout: the way
// every one-shot command talks to the daemon. Following commands (logs -f,
// events -f) use a.client and their own context instead.
func (a *app) connect(cmd *cobra.Command) (context.Context, *client.Client, context.CancelFunc, error) {
	c, err := a.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	return ctx, c, cancel, nil
}

// table returns the writer every human-readable listing is aligned with;
// Flush it when done.
func (a *app) table() *tabwriter.Writer { return tabWriter(a.stdout) }

// tabWriter returns a writer aligned like every listing; Flush it when done.
func tabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// printList writes vs as JSON with --json, else as a table: header (tab
// separated), then row(v) for each v.
func printList[T any](a *app, vs []T, header string, row func(T) []any) error {
	if a.json {
		return a.printJSON(vs)
	}
	tw := a.table()
	fmt.Fprintln(tw, header)
	for _, v := range vs {
		cells := row(v)
		for i, c := range cells {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef(fmt.Errorf("%s takes %s (see %s --help)", cmd.CommandPath(), what, cmd.CommandPath()))
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef(fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args[0]))
	}
	return nil
}
