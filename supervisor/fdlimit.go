package supervisor

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// FileLimit returns the soft and hard limit of open files (RLIMIT_NOFILE)
// of this process.
//
// Go raises the soft limit to the hard one when a program starts, and
// hands every child the soft limit the program was started with, as long
// as the program does not set the limit itself: a service gets the limit
// it would get from the shell that started the daemon, however many
// services the daemon holds. So Solo never sets it, not even as root,
// where it could raise the hard limit: its children would then inherit
// the raised limit. Where the hard limit is too low for the services a
// daemon runs (each holds one open file in it, its pidfd), the operator
// raises it: LimitNOFILE= in a systemd unit, `ulimit -Hn` in the shell.
func FileLimit() (soft, hard uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0
	}
	return rl.Cur, rl.Max
}

// FilesPerService is how many files the daemon holds open for each
// running service: its pidfd. A log file, a pipe or a cgroup directory is
// not held between starts.
const FilesPerService = 1

// filesError names the limit that err reached when it is EMFILE (this
// process's limit of open files) or ENFILE (the system's), and says what
// to do; any other error is returned as it is.
func filesError(err error) error {
	switch {
	case errors.Is(err, unix.EMFILE):
		soft, hard := FileLimit()
		return fmt.Errorf("%w: the daemon reached its limit of open files (RLIMIT_NOFILE %d, hard limit %d), and each running service holds %d: raise the hard limit (LimitNOFILE= in its systemd unit, `ulimit -Hn` in the shell that starts it) and restart the daemon, or run fewer services (%v)",
			ErrTooManyFiles, soft, hard, FilesPerService, err)
	case errors.Is(err, unix.ENFILE):
		return fmt.Errorf("%w: the system's limit of open files (fs.file-max) is reached: raise it (sysctl fs.file-max) or close files elsewhere (%v)", ErrTooManyFiles, err)
	}
	return err
}
