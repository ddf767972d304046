package solo

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
)

// Modes of the data dir. Only the daemon reads what is in it; a service
// (which may run as a tenant's user) needs to pass through the data dir
// to reach its notify socket, and nothing else. The vault's key file is
// the vault's own check (a group or other bit refuses it at Open).
const (
	modeHome   = 0o711 // traversal, no listing: the notify sockets below
	modeNotify = 0o711 // the sockets are 0666 (probe.Listen), names are hashes
	modePriv   = 0o700 // every other directory
)

// tightenDataDir brings an existing data dir to the modes above: home and
// notify/ 0711, every other directory 0700, every file without group or
// other bits (solo.db, logs), sockets under notify/ left as they are, and
// sessions/ left to the session manager (a confined kernel's files are
// its, see session.Manager's giveKernel). A data dir made by an older Solo (logs 0750/0640) is
// tightened once: it logs how many entries changed, and nothing when none
// did. An entry it cannot change is logged and left.
func tightenDataDir(home string, log hclog.Logger) error {
	changed := 0
	set := func(path string, mode fs.FileMode) {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&fs.ModeSymlink != 0 || fi.Mode().Perm() == mode {
			return
		}
		if err := os.Chmod(path, mode); err != nil {
			log.Warn("cannot tighten a data dir entry's permissions", "path", path, "error", err)
			return
		}
		changed++
	}
	set(home, modeHome)
	err := filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone meanwhile
			}
			return err
		}
		switch {
		case path == home:
			return nil
		case path == filepath.Join(home, "notify"):
			set(path, modeNotify)
			return filepath.SkipDir
		case path == filepath.Join(home, "sessions"):
			return filepath.SkipDir // the session manager's own modes (package session)
		case d.IsDir():
			set(path, modePriv)
		case d.Type().IsRegular():
			if fi, err := d.Info(); err == nil {
				set(path, fi.Mode().Perm()&^0o077)
			}
		}
		return nil
	})
	if changed > 0 {
		log.Warn("tightened the data dir's permissions: only the daemon may read it", "data_dir", home, "entries", changed)
	}
	return err
}
