package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/state"
)

func (a *app) eventsCmd() *cobra.Command {
	var (
		from            uint64
		follow          bool
		tenant, service string
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print the event log (NDJSON with --json)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !follow {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, a.timeout)
				defer cancel()
			}
			enc := json.NewEncoder(a.stdout)
			q := client.EventsQuery{From: from, Follow: follow, Tenant: tenant, Service: service}
			if service != "" && tenant == "" {
				q.Tenant = state.DefaultTenant
			}
			return c.EventsOf(ctx, q, func(env eventstore.Envelope) error {
				if a.json {
					return enc.Encode(env)
				}
				subject := env.Subject
				if env.Tenant != "" {
					subject = env.Tenant + "/" + env.Subject
				}
				_, err := fmt.Fprintf(a.stdout, "%6d  %s  %-26s %-24s %s\n", env.Pos, env.Time.Format("2006-01-02T15:04:05.000Z"), env.Type, subject, env.Data)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&from, "from", 1, "first position to print")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	f.StringVar(&service, "service", "", "only the events of this service")
	f.StringVar(&tenant, "tenant", "", "only the events of this tenant (with --service, default \"default\")")
	return cmd
}
