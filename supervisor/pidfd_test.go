package supervisor

import (
	"context"
	"errors"
	"runtime"
	"syscall"
	"testing"
)

func TestExit_String(t *testing.T) {
	tests := []struct {
		exit    Exit
		want    string
		success bool
	}{
		{Exit{}, "exit status 0", true},
		{Exit{Code: 3}, "exit status 3", false},
		{Exit{Code: -1, Signal: syscall.SIGKILL}, "signal: killed", false},
		{Exit{Code: -1, Signal: syscall.SIGABRT, CoreDumped: true}, "signal: aborted (core dumped)", false},
		{Exit{Code: -1, Unknown: true}, "exit status unknown", false},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.exit.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := tt.exit.Success(); got != tt.success {
				t.Errorf("Success() = %v, want %v", got, tt.success)
			}
		})
	}
}

func TestWatch_Wait(t *testing.T) {
	t.Run("exit 0", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"/bin/sh", "-c", "exit 0"}})
		exit, err := p.Wait(waitCtx(t))
		if err != nil || !exit.Success() || exit.Unknown {
			t.Fatalf("Wait = %v, %v; want success", exit, err)
		}
	})
	t.Run("exit 3", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"/bin/sh", "-c", "exit 3"}})
		exit, err := p.Wait(waitCtx(t))
		if err != nil || exit != (Exit{Code: 3}) {
			t.Fatalf("Wait = %+v, %v; want exit status 3", exit, err)
		}
	})
	t.Run("killed by SIGKILL", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
		if err := Signal(p.Identity(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		exit, err := p.Wait(waitCtx(t))
		if err != nil || exit != (Exit{Code: -1, Signal: syscall.SIGKILL}) {
			t.Fatalf("Wait = %+v, %v; want killed by SIGKILL", exit, err)
		}
		// Wait learns without reaping: the zombie keeps its pid.
		st, err := readStat(p.PID())
		if err != nil || st.State != 'Z' {
			t.Fatalf("after Wait: stat %+v, %v; want a zombie", st, err)
		}
		if again, err := p.Wait(context.Background()); err != nil || again != exit {
			t.Fatalf("second Wait = %v, %v", again, err)
		}
	})
	t.Run("context done", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := p.Wait(ctx)
			errc <- err
		}()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
		if _, exited, err := p.Watch().Exited(); err != nil || exited {
			t.Fatalf("Exited = %v, %v; the process should still run", exited, err)
		}
		// The Watch is still usable, without a stale deadline.
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if exit, err := p.Wait(waitCtx(t)); err != nil || exit.Signal != syscall.SIGTERM {
			t.Fatalf("Wait after cancel = %v, %v", exit, err)
		}
	})
	t.Run("loop context done", func(t *testing.T) {
		// A Tree's loop context wakes the watch parked on it directly.
		p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
		lc := &loopContext{}
		errc := make(chan error, 1)
		go func() {
			_, err := p.Wait(lc)
			errc <- err
		}()
		for parked := false; !parked; runtime.Gosched() { // until the Wait is parked on lc
			lc.mu.Lock()
			parked = lc.parked == p.watch
			lc.mu.Unlock()
		}
		lc.cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
		if _, err := p.Wait(lc); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait on an ended loop context = %v, want context.Canceled", err)
		}
		// The Watch is still usable, without a stale deadline.
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if exit, err := p.Wait(waitCtx(t)); err != nil || exit.Signal != syscall.SIGTERM {
			t.Fatalf("Wait after cancel = %v, %v", exit, err)
		}
	})
	t.Run("closed while waiting", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
		w, err := WatchPID(p.PID())
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := w.Wait(context.Background())
			errc <- err
		}()
		w.Close()
		if err := <-errc; !errors.Is(err, ErrWatchClosed) {
			t.Fatalf("Wait = %v, want ErrWatchClosed", err)
		}
	})
	t.Run("no such process", func(t *testing.T) {
		if _, err := WatchPID(reapedPID(t)); !errors.Is(err, ErrNoProcess) {
			t.Fatalf("WatchPID = %v, want ErrNoProcess", err)
		}
	})
}

func TestWatch_Reap(t *testing.T) {
	p, _ := mustStart(t, StartOptions{Argv: []string{"/bin/sh", "-c", "read x; exit 7"}})
	// stdin is /dev/null: read fails at once and the shell exits 7.
	w := p.Watch()
	exit, err := w.Wait(waitCtx(t))
	if err != nil || exit.Code != 7 {
		t.Fatalf("Wait = %v, %v", exit, err)
	}
	if _, err := readStat(p.PID()); err != nil {
		t.Fatalf("zombie gone before Reap: %v", err)
	}
	for range 2 { // idempotent
		got, err := w.Reap()
		if err != nil || got != exit {
			t.Fatalf("Reap = %v, %v; want %v", got, err, exit)
		}
	}
	if _, err := readStat(p.PID()); !errors.Is(err, ErrNoProcess) {
		t.Fatalf("after Reap: %v, want the pid gone", err)
	}

	t.Run("before exit", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
		if _, err := p.Watch().Reap(); !errors.Is(err, ErrNotExited) {
			t.Fatalf("Reap = %v, want ErrNotExited", err)
		}
		if err := Verify(p.Identity()); err != nil {
			t.Fatalf("process hurt by early Reap: %v", err)
		}
	})
}

// TestWatch_Wait_threads checks that waiting children park in the runtime
// poller: 300 blocked waits must not cost 300 OS threads, as blocking waitid
// calls (os.Process.Wait) would. OS threads are never given back by the Go
// runtime, so the count after the waits end is a high-water mark.
func TestWatch_Wait_threads(t *testing.T) {
	const n = 300
	const margin = 20
	procs := make([]*Process, n)
	for i := range procs {
		procs[i], _ = mustStart(t, StartOptions{Argv: []string{"/usr/bin/sleep", "3600"}})
	}
	before := threads(t)

	started := make(chan struct{}, n)
	results := make(chan Exit, n)
	for _, p := range procs {
		go func() {
			started <- struct{}{}
			exit, err := p.Wait(context.Background())
			if err != nil {
				t.Error(err)
			}
			results <- exit
		}()
	}
	for range n {
		<-started
	}
	// Each goroutine had to get a P to run; with blocking waits, every
	// P taken by a blocked wait needed a new thread for the next one.
	during := threads(t)
	for _, p := range procs {
		if err := p.SignalGroup(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if exit := <-results; exit.Signal != syscall.SIGKILL {
			t.Errorf("exit = %v, want SIGKILL", exit)
		}
	}
	after := threads(t)
	t.Logf("threads: before %d, during %d, after %d", before, during, after)
	if grown := max(during, after) - before; grown > margin {
		t.Fatalf("threads grew by %d while %d children were waited on; want <= %d", grown, n, margin)
	}
}
