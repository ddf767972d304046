package supervisor

import (
	"context"
	"fmt"
	"syscall"
)

// Run runs a short-lived child, such as an exec probe, to its end: it is
// started as [Start] starts a service (its own process group, its
// credential, umask and cgroup: opts.Cgroup may be the service's own), and
// Run returns its [Exit] once it has been reaped with whatever is left of
// its process group. When ctx ends first the whole process group is
// SIGKILLed and reaped, and the error is ctx's: nothing of it is left
// behind. Unlike a service's end, Run never kills the cgroup, which the
// child shares with the service it checks.
func Run(ctx context.Context, opts StartOptions) (Exit, error) {
	p, err := Start(opts)
	if err != nil {
		return Exit{}, err
	}
	defer p.Close()
	p.cg = nil // the service's cgroup: its end is not the service's
	_, werr := p.Wait(ctx)
	if werr != nil {
		// ctx ended: kill the group, then wait for the leader to go.
		_ = p.SignalGroup(syscall.SIGKILL)
		if _, err := p.Wait(context.Background()); err != nil {
			return Exit{}, fmt.Errorf("run %q: %w", opts.Argv[0], err)
		}
	}
	exit, err := p.Finish()
	if err != nil {
		return Exit{}, fmt.Errorf("run %q: %w", opts.Argv[0], err)
	}
	if werr != nil {
		return exit, werr
	}
	return exit, nil
}
