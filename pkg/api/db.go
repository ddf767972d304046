package api

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/solo-rt/solo/pkg/wire"
)

// dbCheck runs the store's full check. Appends wait while it runs (see
// eventstore.Store.Check).
func (s *Server) dbCheck(w http.ResponseWriter, r *http.Request) error {
	if p, _ := PrincipalFrom(r.Context()); !p.admin() {
		return fmt.Errorf("db check: %w: only an admin may check the database", errDenied)
	}
	rep, err := s.rt.Store().Check(r.Context())
	if err != nil {
		return fmt.Errorf("db check: %w", err)
	}
	writeJSON(w, http.StatusOK, checkReport(rep))
	return nil
}

// dbBackup sends a consistent copy of the database file.
//
// The copy is first written to an unlinked temp file beside the database,
// then sent from there: the store's backup is one bbolt read transaction,
// and holding it open for as long as a slow client takes to read would
// hold back bbolt's remapping, and so appends (I8). The reply carries a
// Content-Length, so a client can tell a cut-off copy from a whole one.
func (s *Server) dbBackup(w http.ResponseWriter, r *http.Request) error {
	if p, _ := PrincipalFrom(r.Context()); !p.admin() {
		return fmt.Errorf("db backup: %w: only an admin may back up the database", errDenied)
	}
	f, err := os.CreateTemp(s.rt.DataDir(), ".backup-*.tmp")
	if err != nil {
		return fmt.Errorf("db backup: %w", err)
	}
	os.Remove(f.Name()) // the open file lives on; nothing is left if we die
	defer f.Close()
	n, err := s.rt.Store().Backup(f)
	if err != nil {
		return fmt.Errorf("db backup: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("db backup: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", wire.ContentTypeBackup)
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	h.Set("Content-Disposition", `attachment; filename="solo.db"`)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, f); err != nil {
		s.log.Debug("backup reply cut short", "error", err)
	}
	return nil
}
