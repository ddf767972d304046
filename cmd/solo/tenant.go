package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

func (a *app) tenantCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Set and show tenant policies: whom a tenant's services run as (local admin only)",
		Long: `A tenant's policy names the users its services may run as (the first is the
default of a spec without user) and the groups they may take. A tenant other
than "default" without users in its policy runs its services as its own
dynamic user: an unprivileged uid of 61184-65519 allocated once, with no
passwd entry, as systemd's DynamicUser. Never root. Only the local admin (the
unix socket, without a token) may read or change policies.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.tenantSetCmd(), a.tenantShowCmd(), a.tenantLsCmd())
	return cmd
}

// splitList reads a comma-separated flag: "" is the empty list.
func splitList(s string) []string {
	out := []string{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (a *app) tenantSetCmd() *cobra.Command {
	var (
		users, groups                             string
		maxServices, maxSessions, maxTasks, burst int
		rate                                      float64
	)
	cmd := &cobra.Command{
		Use:   "set NAME [--users U1,U2] [--groups G1,G2] [--max-services N] [--max-sessions N] [--max-tasks N] [--rate R --burst B]",
		Short: "Change a tenant's policy (the flags given; an empty list clears)",
		Long: `set changes the fields of the policy whose flags are given and keeps the
others. Every user and group must exist on the daemon's host and none may be
root; an unknown one is refused, naming it, and nothing is recorded.

--max-services, --max-sessions and --max-tasks are the tenant's own quotas, and
--rate and --burst the request rate of its tokens together, in place of the
daemon's --max-*-per-tenant, --rate-per-tenant and --burst-per-tenant; 0 goes
back to the daemon's. A negative value is refused, naming it.`,
		Args: exactArgs(1, "one tenant NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := state.ValidName(args[0]); err != nil {
				return usagef(fmt.Errorf("NAME: %w", err))
			}
			var req wire.TenantSetRequest
			if cmd.Flags().Changed("users") {
				l := splitList(users)
				req.Users = &l
			}
			if cmd.Flags().Changed("groups") {
				l := splitList(groups)
				req.Groups = &l
			}
			for _, f := range []struct {
				flag string
				dst  **int
				v    int
			}{{"max-services", &req.MaxServices, maxServices}, {"max-sessions", &req.MaxSessions, maxSessions}, {"max-tasks", &req.MaxTasks, maxTasks}, {"burst", &req.Burst, burst}} {
				if cmd.Flags().Changed(f.flag) {
					v := f.v
					*f.dst = &v
				}
			}
			if cmd.Flags().Changed("rate") {
				req.Rate = &rate
			}
			if req == (wire.TenantSetRequest{}) {
				return usagef(fmt.Errorf("tenant set: nothing to change: give --users, --groups, --max-services, --max-sessions, --max-tasks, --rate or --burst"))
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			v, err := c.SetTenant(ctx, args[0], req)
			if err != nil {
				return err
			}
			return a.printTenant(v)
		},
	}
	f := cmd.Flags()
	f.StringVar(&users, "users", "", "users the tenant's services may run as, comma-separated; the first is the default")
	f.StringVar(&groups, "groups", "", "groups the tenant's services may take, comma-separated")
	f.IntVar(&maxServices, "max-services", 0, "most services the tenant may hold (0: the daemon's --max-services-per-tenant)")
	f.IntVar(&maxSessions, "max-sessions", 0, "most live kernel sessions the tenant may hold (0: the daemon's)")
	f.IntVar(&maxTasks, "max-tasks", 0, "most queued tasks the tenant's sessions may hold (0: the daemon's)")
	f.Float64Var(&rate, "rate", 0, "API requests per second the tenant's tokens may make together (0: the daemon's --rate-per-tenant)")
	f.IntVar(&burst, "burst", 0, "API requests the tenant's tokens may make at once (with --rate)")
	return cmd
}

func (a *app) tenantShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a tenant's policy and dynamic user",
		Args:  exactArgs(1, "one tenant NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := state.ValidName(args[0]); err != nil {
				return usagef(fmt.Errorf("NAME: %w", err))
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			v, err := c.Tenant(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printTenant(v)
		},
	}
}

// runsAs says in words whom a tenant's services run as by default.
func runsAs(v wire.TenantView) string {
	switch {
	case len(v.Users) > 0:
		return v.Users[0]
	case v.DynamicUID != 0:
		return fmt.Sprintf("dynamic uid %d", v.DynamicUID)
	}
	return "dynamic (allocated at its first deploy)"
}

func (a *app) printTenant(v wire.TenantView) error {
	if a.json {
		return a.printJSON(v)
	}
	policy := "none"
	if v.Policy {
		policy = "set " + v.PolicySetAt.Local().Format("2006-01-02T15:04:05Z07:00")
	}
	fmt.Fprintf(a.stdout, "tenant:  %s\npolicy:  %s\nusers:   %s\ngroups:  %s\nruns as: %s\n",
		v.Name, policy, orDash(strings.Join(v.Users, ",")), orDash(strings.Join(v.Groups, ",")), runsAs(v))
	fmt.Fprintf(a.stdout, "quotas:  services %s, sessions %s, queued tasks %s\nrate:    %s\n",
		limitIn(v.Limits.Services, v.Own.Services), limitIn(v.Limits.Sessions, v.Own.Sessions), limitIn(v.Limits.Tasks, v.Own.Tasks), rateOf(v))
	return nil
}

// limitIn words a quota in force, and whose it is.
func limitIn(n, own int) string {
	switch {
	case own > 0:
		return fmt.Sprintf("%d (its own)", own)
	case n == 0:
		return "no limit"
	}
	return fmt.Sprintf("%d (the daemon's)", n)
}

func rateOf(v wire.TenantView) string {
	if v.Rate > 0 {
		return fmt.Sprintf("%v requests/s, burst %d (its own)", v.Rate, v.Burst)
	}
	return "the daemon's (--rate-per-tenant)"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) tenantLsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List tenants with a policy or a dynamic user",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			views, err := c.Tenants(ctx)
			if err != nil {
				return err
			}
			return printList(a, views, "TENANT\tUSERS\tGROUPS\tRUNS AS", func(v wire.TenantView) []any {
				return []any{v.Name, orDash(strings.Join(v.Users, ",")), orDash(strings.Join(v.Groups, ",")), runsAs(v)}
			})
		},
	}
}
