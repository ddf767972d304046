package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Grant, list and revoke capability tokens",
		Long: `A token lets a client act in one tenant with some scopes (read, logs, deploy,
kill, admin), optionally only on services matching a pattern, until it expires.
Clients send it with --token or SOLO_TOKEN. The plaintext is printed once, at
grant: the daemon keeps only its hash.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.tokenGrantCmd(), a.tokenLsCmd(), a.tokenRevokeCmd())
	return cmd
}

func (a *app) tokenGrantCmd() *cobra.Command {
	var (
		tenant, scopes, services string
		ttl                      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "grant --tenant T --scope S[,S] [--ttl D] [--services PATTERN]",
		Short: "Grant a token and print it, this once",
		Long: `grant asks the daemon for a token and prints it on the first line of its output,
then its id and expiry. The token is not shown again: store it now.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := capability.ParseScopes(scopes)
			if err != nil {
				return usagef(fmt.Errorf("--scope: %w", err))
			}
			if ttl < 0 {
				return usagef(fmt.Errorf("--ttl %s is negative", ttl))
			}
			req := wire.TokenRequest{Tenant: tenant, TTL: state.Duration(ttl), Services: services}
			for _, s := range sc {
				req.Scopes = append(req.Scopes, string(s))
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			g, err := c.GrantToken(ctx, req)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(g)
			}
			fmt.Fprintln(a.stdout, g.Token)
			tw := a.table()
			fmt.Fprintf(tw, "id:\t%s\n", g.ID)
			fmt.Fprintf(tw, "tenant:\t%s\n", g.Tenant)
			fmt.Fprintf(tw, "scopes:\t%s\n", strings.Join(g.Scopes, ","))
			if g.Services != "" {
				fmt.Fprintf(tw, "services:\t%s\n", g.Services)
			}
			fmt.Fprintf(tw, "expires:\t%s\n", g.ExpiresAt.Local().Format(time.RFC3339))
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(a.stderr, "solo: this token is shown once and cannot be recovered: store it now")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant the token acts in (default: your token's tenant, or \"default\")")
	f.StringVar(&scopes, "scope", "", "comma-separated scopes: read, logs, deploy, kill, admin (required)")
	f.DurationVar(&ttl, "ttl", 0, "how long the token lives (default 24h, at most the daemon's --max-token-ttl)")
	f.StringVar(&services, "services", "", "only services whose name matches this pattern, e.g. 'web-*'")
	return cmd
}

func (a *app) tokenLsCmd() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List tokens (never their plaintext)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			views, err := c.ListTokens(ctx, tenant)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(views)
			}
			tw := a.table()
			fmt.Fprintln(tw, "ID\tTENANT\tSCOPES\tSERVICES\tSTATE\tEXPIRES\tGRANTED BY")
			for _, v := range views {
				svc := v.Services
				if svc == "" {
					svc = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Tenant, strings.Join(v.Scopes, ","), svc,
					v.State, v.ExpiresAt.Local().Format(time.RFC3339), v.Actor)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant (default: every tenant you may see)")
	return cmd
}

func (a *app) tokenRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token at once (by its id, from solo token ls)",
		Args:  exactArgs(1, "one token ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if capability.Validate(args[0]) == nil || strings.HasPrefix(args[0], capability.Prefix) {
				return usagef(fmt.Errorf("revoke takes a token id (see solo token ls), not the token itself"))
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			v, err := c.RevokeToken(ctx, args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "revoked %s (tenant %s)\n", v.ID, v.Tenant)
			return nil
		},
	}
}
