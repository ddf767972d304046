package solo

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

// TestTightenDataDir: an older data dir (logs 0750/0640, a world-readable
// database) is brought to 0711 / 0700 / 0600 once, logged once; notify/
// keeps 0711 and sessions/ is left to the session manager.
func TestTightenDataDir(t *testing.T) {
	home := t.TempDir()
	mk := func(rel string, mode os.FileMode) string {
		p := filepath.Join(home, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		if strings.HasSuffix(rel, "/") {
			require.NoError(t, os.MkdirAll(p, mode))
		} else {
			require.NoError(t, os.WriteFile(p, nil, mode))
		}
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	db := mk("solo.db", 0o644)
	logDir := mk("logs/alpha/", 0o750)
	logFile := mk("logs/alpha/web.log", 0o640)
	rotated := mk("logs/alpha/web.log.1", 0o644)
	notify := mk("notify/", 0o755)
	kernelConn := mk("sessions/beta/nb/kernel.json", 0o640)
	require.NoError(t, os.Chmod(home, 0o755))

	var out bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &out})
	require.NoError(t, tightenDataDir(home, log))
	for path, want := range map[string]os.FileMode{
		home: 0o711, db: 0o600, filepath.Join(home, "logs"): 0o700, logDir: 0o700, logFile: 0o600, rotated: 0o600,
		notify: 0o711, kernelConn: 0o640,
	} {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, want, fi.Mode().Perm(), path)
	}
	require.Equal(t, 1, strings.Count(out.String(), "tightened the data dir's permissions"), out.String())
	require.Contains(t, out.String(), "entries=7")

	out.Reset()
	require.NoError(t, tightenDataDir(home, log))
	require.Empty(t, out.String(), "a tight data dir is not logged again")
}
