package supervisor

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// serviceSignals are the signals a service must get at their default
// action, whatever the supervisor itself was started with: a daemon run
// under nohup ignores SIGHUP, an ignored signal survives exec, and a shell
// cannot trap a signal ignored on entry, so `solo signal web HUP` would
// reach an nginx that never reloads. systemd resets every signal of every
// service for the same reason.
var serviceSignals = []os.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGALRM,
}

var defaultSignalsOnce sync.Once

// giveChildrenDefaultSignals makes the signals of serviceSignals that this
// process ignores reach its children at their default action. Go keeps an
// ignore inherited at start; catching the signal instead (and dropping
// it, so this process goes on ignoring it in effect) lets exec reset it
// to the default in the child, as exec does for every caught signal. It
// runs once, before the first start; a signal this process handles
// already is left alone.
func giveChildrenDefaultSignals() {
	defaultSignalsOnce.Do(func() {
		var ignored []os.Signal
		for _, s := range serviceSignals {
			if signal.Ignored(s) {
				ignored = append(ignored, s)
			}
		}
		if len(ignored) == 0 {
			return
		}
		c := make(chan os.Signal, 1)
		signal.Notify(c, ignored...)
		go func() {
			for range c {
			}
		}()
	})
}
