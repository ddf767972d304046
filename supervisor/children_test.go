package supervisor

import (
	"sync"
	"syscall"
	"testing"
)

func TestOwnChild(t *testing.T) {
	t.Run("registered from Start until the Watch reaps", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
		if !OwnChild(p.PID()) {
			t.Fatalf("OwnChild(%d) = false right after Start", p.PID())
		}
		if err := p.SignalGroup(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(waitCtx(t)); err != nil {
			t.Fatal(err)
		}
		// A zombie whose status is not collected yet is still ours.
		if !OwnChild(p.PID()) {
			t.Fatalf("OwnChild(%d) = false for an unreaped zombie", p.PID())
		}
		exit, err := p.Finish()
		if err != nil || exit.Signal != syscall.SIGKILL {
			t.Fatalf("Finish = %v, %v", exit, err)
		}
		if OwnChild(p.PID()) {
			t.Fatalf("OwnChild(%d) = true after Finish", p.PID())
		}
	})
	t.Run("failed start registers nothing", func(t *testing.T) {
		before := registered()
		if _, err := Start(StartOptions{Argv: []string{"/nonexistent/solo-test"}}); err == nil {
			t.Fatal("Start of a missing program succeeded")
		}
		if after := registered(); after != before {
			t.Fatalf("registry went from %d to %d entries", before, after)
		}
	})
	t.Run("not ours", func(t *testing.T) {
		for _, pid := range []int{1, syscall.Getpid(), syscall.Getppid()} {
			if OwnChild(pid) {
				t.Errorf("OwnChild(%d) = true", pid)
			}
		}
	})
	t.Run("a recycled pid keeps the newer registration", func(t *testing.T) {
		const pid = 1 << 30 // above pid_max: never a real process
		old, cur := &Watch{pid: pid}, &Watch{pid: pid}
		registerChild(old)
		registerChild(cur) // the pid was reaped and handed to a new child
		forgetChild(old)   // the old Watch's late bookkeeping
		if !OwnChild(pid) {
			t.Fatal("forgetting the old Watch dropped the new child")
		}
		forgetChild(cur)
		if OwnChild(pid) {
			t.Fatal("still registered after its own Watch forgot it")
		}
	})
	t.Run("HoldStarts with concurrent starts", func(t *testing.T) {
		// Under HoldStarts every started child is registered: a child
		// whose Start returned is OwnChild until it is finished.
		var wg sync.WaitGroup
		procs := make(chan *Process, 8)
		for range 8 {
			wg.Go(func() {
				p, err := Start(StartOptions{Argv: []string{"true"}})
				if err != nil {
					t.Error(err)
					return
				}
				procs <- p
			})
		}
		wg.Wait()
		close(procs)
		release := HoldStarts()
		for p := range procs {
			t.Cleanup(func() { mustKill(t, p) })
			if !OwnChild(p.PID()) {
				t.Errorf("OwnChild(%d) = false under HoldStarts", p.PID())
			}
		}
		release()
		// Start works again once released.
		mustStart(t, StartOptions{Argv: []string{"true"}})
	})
}

// registered returns the number of registered children.
func registered() int {
	childMu.Lock()
	defer childMu.Unlock()
	return len(children)
}
