package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fdLimitChildEnv = "SUPERVISOR_FDLIMIT_CHILD"

// TestStart_FileLimit runs this test binary as a daemon started from a
// shell whose soft limit of open files is 256: the daemon may use up to
// its hard limit, a service it starts gets the shell's 256 (and the same
// hard limit), and once the daemon has no file left, a start fails with
// an error that names the limit and how to raise it.
func TestStart_FileLimit(t *testing.T) {
	_, hard := FileLimit()
	if hard <= 256 {
		t.Skipf("the hard limit of open files is %d: no room to test under it", hard)
	}
	out := filepath.Join(t.TempDir(), "child")
	cmd := exec.Command("sh", "-c", `ulimit -Sn 256 && exec "$0"`, os.Args[0])
	cmd.Env = append(os.Environ(), fdLimitChildEnv+"="+out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 3, "%s", b)
	// Go raises it to one below the hard limit (syscall's rlimit.go), to
	// tell whether another process changed it since.
	assert.Equal(t, fmt.Sprintf("daemon soft %d", hard-1), lines[0], "Go raises the daemon's soft limit to its hard one")
	assert.Equal(t, fmt.Sprintf("service 256 %d", hard), lines[1], "the service gets the shell's limit")
	assert.Contains(t, lines[2], "too many open files: the daemon reached its limit of open files (RLIMIT_NOFILE 64")
	assert.Contains(t, lines[2], "raise the hard limit (LimitNOFILE=")
}

// fdLimitChild is the daemon of TestStart_FileLimit: it prints its soft
// limit, the limits a service it starts sees, and the error of a start
// once no file is left.
func fdLimitChild() {
	out := os.Getenv(fdLimitChildEnv)
	fail := func(err error) {
		fmt.Println(err)
		os.Exit(1)
	}
	soft, hard := FileLimit()
	fmt.Printf("daemon soft %d\n", soft)
	f, err := os.Create(out)
	if err != nil {
		fail(err)
	}
	p, err := Start(StartOptions{Argv: []string{"sh", "-c", `echo "$(ulimit -Sn) $(ulimit -Hn)"`}, Output: f})
	f.Close()
	if err != nil {
		fail(err)
	}
	if _, err := p.Wait(context.Background()); err != nil {
		fail(err)
	}
	if _, err := p.Finish(); err != nil {
		fail(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		fail(err)
	}
	fmt.Printf("service %s\n", strings.TrimSpace(string(b)))

	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 64, Max: hard}); err != nil {
		fail(err)
	}
	for {
		if _, err := os.Open(os.DevNull); err != nil {
			break // every file this process may hold is open
		}
	}
	_, err = Start(StartOptions{Argv: []string{"true"}})
	if !errors.Is(err, ErrTooManyFiles) {
		fail(fmt.Errorf("start with no file left: %v, want ErrTooManyFiles", err))
	}
	fmt.Println(err)
}
