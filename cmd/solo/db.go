package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/wire"
)

func (a *app) dbCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Check or back up the database",
		Args:  noArgs,
	}
	cmd.AddCommand(a.dbCheckCmd(), a.dbBackupCmd())
	return cmd
}

// withStore runs fn against the daemon when one answers, else against the
// database file directly (it is locked while a daemon runs, so the two
// never race).
func (a *app) withStore(ctx context.Context, viaAPI func(*client.Client) error, direct func(*eventstore.Store) error) error {
	return a.withFile(ctx, viaAPI, func(path string) error {
		s, err := eventstore.Open(path, nil)
		if err != nil {
			return err
		}
		defer s.Close()
		return direct(s)
	})
}

// withFile is withStore for a command that reads the file itself, such as
// a check of a file too damaged to open as a store.
func (a *app) withFile(ctx context.Context, viaAPI func(*client.Client) error, direct func(path string) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	err = viaAPI(c)
	if !errors.Is(err, client.ErrUnreachable) {
		return err
	}
	path := filepath.Join(a.dataDir, "solo.db")
	if _, statErr := os.Stat(path); statErr != nil {
		return fmt.Errorf("no daemon answers and there is no database at %s: %w", path, statErr)
	}
	return direct(path)
}

func (a *app) dbCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Verify the database: bbolt's check, gapless positions, decodable events, indexes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var rep wire.CheckReport
			ctx := cmd.Context()
			// Without a daemon, the file is checked read-only, not opened
			// as a store: a file too damaged to open still gets its list
			// of problems. Its report is printed in the daemon's wire form,
			// so that both print the same.
			err := a.withFile(ctx,
				func(c *client.Client) (err error) { rep, err = c.DBCheck(ctx); return err },
				func(path string) error {
					r, err := eventstore.CheckFile(ctx, path)
					rep = wire.CheckReport(r)
					return err
				})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(rep)
			}
			fmt.Fprintf(a.stdout, "ok: %d events in %d streams, %d snapshots\n", rep.Events, rep.Streams, rep.Snapshots)
			return nil
		},
	}
}

func (a *app) dbBackupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the database to FILE (works while the daemon runs); the copy is checked before FILE is written",
		Args:  exactArgs(1, "the backup FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dst := args[0]
			// Write beside the target and rename, so FILE is never a
			// half-written database.
			tmp, err := os.CreateTemp(filepath.Dir(dst), ".solo-backup-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			var n int64
			ctx := cmd.Context()
			err = a.withStore(ctx,
				func(c *client.Client) (err error) { n, err = c.DBBackup(ctx, tmp); return err },
				func(s *eventstore.Store) (err error) { n, err = s.Backup(tmp); return err })
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				// A copy of a damaged log is damaged too: say so, and
				// leave FILE alone rather than write a backup that
				// cannot be restored.
				if _, cerr := eventstore.CheckFile(ctx, tmp.Name()); cerr != nil {
					err = fmt.Errorf("the copy is damaged, so %s was not written (run solo db check): %w", dst, cerr)
				}
			}
			if err == nil {
				err = os.Rename(tmp.Name(), dst)
			}
			if err != nil {
				return fmt.Errorf("backup to %s: %w", dst, err)
			}
			if a.json {
				return a.printJSON(map[string]any{"file": dst, "bytes": n})
			}
			fmt.Fprintf(a.stdout, "wrote %s (%d bytes)\n", dst, n)
			return nil
		},
	}
}
