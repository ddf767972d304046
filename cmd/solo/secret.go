package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/vault"
	"github.com/solo-rt/solo/pkg/wire"
)

func (a *app) secretCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Set, list and remove secrets of the vault",
		Long: `A secret is a value the daemon keeps sealed (XChaCha20-Poly1305) under a key
file outside its database, for services to take in their environment at every
start: deploy --env-secret KEY=NAME, or env: {KEY: {secret: NAME}} in an apply
file. A value is read from stdin or --from-file, never from the command line,
and never shown again: ls lists names, versions and times.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.secretSetCmd(), a.secretLsCmd(), a.secretRmCmd())
	return cmd
}

func (a *app) secretSetCmd() *cobra.Command {
	var (
		tenant, fromFile string
		restartUsers     bool
	)
	cmd := &cobra.Command{
		Use:   "set NAME [--tenant T] [--from-file PATH] [--restart-users] < value",
		Short: "Store a new version of a secret (value from stdin or --from-file)",
		Long: `set reads the value from stdin (one trailing newline removed, as echo adds one)
or, byte for byte, from --from-file, and stores it as the secret's next version:
1 byte to 64 KiB. It says which services use the secret; they take the new
value at their next start, or now with --restart-users.`,
		Args: exactArgs(1, "one secret NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := state.ValidName(args[0]); err != nil {
				return usagef(fmt.Errorf("NAME: %w", err))
			}
			value, err := a.readSecretValue(fromFile)
			if err != nil {
				return err
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := c.SetSecret(ctx, tenant, args[0], value, restartUsers)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "secret %s/%s: version %d\n", res.Secret.Tenant, res.Secret.Name, res.Secret.Version)
			switch {
			case len(res.Restarted) > 0:
				fmt.Fprintf(a.stdout, "restarted: %s\n", strings.Join(res.Restarted, ", "))
			case len(res.Users) > 0:
				fmt.Fprintf(a.stdout, "used by: %s (they take it at their next start; --restart-users restarts them now)\n", strings.Join(res.Users, ", "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant of the secret (default: \"default\")")
	f.StringVar(&fromFile, "from-file", "", "read the value from this file, byte for byte, instead of stdin")
	f.BoolVar(&restartUsers, "restart-users", false, "restart the services that use the secret")
	return cmd
}

// readSecretValue reads a value from path, or stdin without one trailing
// newline. Empty or over 64 KiB is a usage error; it never quotes the
// value.
func (a *app) readSecretValue(path string) ([]byte, error) {
	var (
		in   io.Reader = a.stdin
		from           = "stdin"
	)
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usagef(fmt.Errorf("--from-file: %w", err))
		}
		defer f.Close()
		in, from = f, "--from-file "+path
	}
	value, err := io.ReadAll(io.LimitReader(in, vault.MaxValue+2))
	if err != nil {
		return nil, fmt.Errorf("read the value from %s: %w", from, err)
	}
	if path == "" {
		value = bytes.TrimSuffix(value, []byte("\n"))
		value = bytes.TrimSuffix(value, []byte("\r"))
	}
	switch {
	case len(value) == 0:
		return nil, usagef(fmt.Errorf("the value from %s is empty", from))
	case len(value) > vault.MaxValue:
		return nil, usagef(fmt.Errorf("the value from %s is over %d bytes (64 KiB)", from, vault.MaxValue))
	}
	return value, nil
}

func (a *app) secretLsCmd() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "ls [--tenant T]",
		Short: "List secrets: names, versions, times (never values)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			views, err := c.ListSecrets(ctx, tenant)
			if err != nil {
				return err
			}
			return printList(a, views, "TENANT\tNAME\tVERSION\tCREATED\tUPDATED", func(v wire.SecretView) []any {
				return []any{v.Tenant, v.Name, v.Version, v.Created.Local().Format(time.RFC3339), v.Updated.Local().Format(time.RFC3339)}
			})
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (default: \"default\", or your token's)")
	return cmd
}

func (a *app) secretRmCmd() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "rm NAME [--tenant T]",
		Short: "Remove a secret (a service that names it fails its next start)",
		Args:  exactArgs(1, "one secret NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := state.ValidName(args[0]); err != nil {
				return usagef(fmt.Errorf("NAME: %w", err))
			}
			ctx, c, cancel, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			v, err := c.RemoveSecret(ctx, tenant, args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "removed secret %s/%s (version %d)\n", v.Tenant, v.Name, v.Version)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant of the secret (default: \"default\")")
	return cmd
}

// parseEnvSecrets reads --env-secret KEY=NAME flags.
func parseEnvSecrets(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, f := range flags {
		k, name, ok := strings.Cut(f, "=")
		if !ok || k == "" || name == "" {
			return nil, usagef(errors.New("--env-secret " + f + ": want KEY=NAME (the variable, then the secret's name)"))
		}
		out[k] = name
	}
	return out, nil
}
