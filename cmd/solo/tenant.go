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
	var users, groups string
	cmd := &cobra.Command{
		Use:   "set NAME [--users U1,U2] [--groups G1,G2]",
		Short: "Change a tenant's policy (the flags given; an empty list clears)",
		Long: `set changes the fields of the policy whose flags are given and keeps the
others. Every user and group must exist on the daemon's host and none may be
root; an unknown one is refused, naming it, and nothing is recorded.`,
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
			if req == (wire.TenantSetRequest{}) {
				return usagef(fmt.Errorf("tenant set: nothing to change: give --users or --groups"))
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
	return nil
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
