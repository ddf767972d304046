package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/solo"
)

func (a *app) applyCmd() *cobra.Command {
	var (
		file          string
		prune, dryRun bool
		w             *startWait
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--prune] [--dry-run]",
		Short: "Deploy the services of a YAML file, declaratively and atomically",
		Long: `apply makes the services of FILE ("-" for stdin) the desired state:

  services:
    - name: web
      tenant: default          # optional
      command: ["sleep", "3600"]
      restart: always          # always | on-failure | never
      env: {PORT: "8080"}      # optional; also dir, stop_signal, stop_timeout,
                               # max_restarts, restart_window
      user: www-data           # optional; also group, groups (a list), umask
      env_file: web.env        # optional; one path or a list
      after: [db]              # optional; start once db, if coming up, is ready
      requires: [cache]        # optional; run only while cache runs and is ready
      nodes: [n1, n2]          # optional, a cluster only; place it only on these

A relative dir or env_file is relative to FILE's directory (to the current one
for stdin). Without dir a service runs in the daemon's working directory.

A file of several YAML documents ("---") is read whole, as one list; entries
are numbered across documents, in file order. A new service is created, a
changed one redeployed as a new generation, an unchanged one left alone.
--prune also kills the services of the file's tenants that the file no longer
names; it never touches a kernel session's service ("session.NAME"), which a
file may not name either. Every deploy and kill is written to the log in one
atomic append: all or nothing.

Refused, with nothing written: a bad entry or document (naming its index,
field and document), a file with no services, a service or field given twice,
a command that cannot start as given (unknown user or group, missing env file,
dir or command), and a --prune that would kill a service while the file creates the same name
in a tenant with no services yet (a misspelt tenant; apply without --prune
first to create the tenant on purpose), an after or requires naming a service
that is not in the tenant after the apply, the service itself, or a cycle
(exit 2, the cycle shown: a -> b -> a), a bad node name in nodes, or nodes
given to a daemon that is not a cluster (exit 2). --dry-run prints the plan and writes
nothing.

Services start in dependency order: each waits until those it is after or
requires are ready. With --wait, apply waits for the starts that can begin;
one waiting for its dependencies is not waited for (status shows what it
waits for). A pruned service that others require stops them until it runs
again.`,
		Example: `  solo apply -f services.yaml
  solo apply -f services.yaml --prune --dry-run
  generate-services | solo apply -f -`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usagef(fmt.Errorf("apply needs -f FILE (or -f - for stdin)"))
			}
			var in io.Reader = a.stdin
			base, err := os.Getwd() // stdin's paths are the caller's
			if err != nil {
				return fmt.Errorf("apply: the current directory: %w", err)
			}
			if file != "-" {
				abs, err := filepath.Abs(file)
				if err != nil {
					return fmt.Errorf("apply: %w", err)
				}
				base = filepath.Dir(abs)
				f, err := os.Open(file)
				if err != nil {
					return fmt.Errorf("apply: %w", err)
				}
				defer f.Close()
				in = f
			}
			req, err := solo.DecodeApplyFile(in)
			if err != nil {
				return fmt.Errorf("apply %s: %w", file, err)
			}
			solo.ResolveApplyPaths(&req, base)
			req.Prune, req.DryRun = prune, dryRun
			wait, err := w.duration()
			if err != nil {
				return err
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := c.ApplyWait(ctx, req, wait)
			if err != nil {
				return namesRefusal(err)
			}
			var failed []string
			for _, it := range res.Items {
				if it.StartError != "" {
					failed = append(failed, it.StartError)
				}
			}
			startErr := func() error {
				if len(failed) == 0 {
					return nil
				}
				return fmt.Errorf("%d of the services did not start:\n  %s", len(failed), strings.Join(failed, "\n  "))
			}
			if a.json {
				if err := a.printJSON(res); err != nil {
					return err
				}
				return startErr()
			}
			for _, it := range res.Items {
				fmt.Fprintf(a.stdout, "%-9s %s/%s generation %d\n", it.Action, it.Tenant, it.Name, it.Generation)
			}
			summary := fmt.Sprintf("%d created, %d updated, %d unchanged, %d pruned",
				res.Count(solo.ApplyCreate), res.Count(solo.ApplyUpdate), res.Count(solo.ApplyUnchanged), res.Count(solo.ApplyPrune))
			switch {
			case res.DryRun:
				fmt.Fprintf(a.stdout, "plan (dry run, nothing written): %s\n", summary)
			case res.LastPos == 0:
				fmt.Fprintf(a.stdout, "applied: %s; nothing to write\n", summary)
			default:
				fmt.Fprintf(a.stdout, "applied: %s; events %d-%d\n", summary, res.FirstPos, res.LastPos)
			}
			return startErr()
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", `YAML file of services ("-" reads stdin)`)
	f.BoolVar(&prune, "prune", false, "kill the services of the file's tenants that the file does not name (never a session's)")
	f.BoolVar(&dryRun, "dry-run", false, "print the plan; write nothing")
	w = addStartWait(cmd)
	return cmd
}
