package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStop(t *testing.T) {
	t.Run("honours SIGTERM", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
		res, err := Stop(context.Background(), p, syscall.SIGTERM, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.Forced || res.Exit.Signal != syscall.SIGTERM {
			t.Fatalf("Stop = %+v; want not forced, killed by SIGTERM", res)
		}
		if _, err := readStat(p.PID()); !errors.Is(err, ErrNoProcess) {
			t.Fatalf("after Stop: %v, want reaped", err)
		}
	})
	t.Run("zero signal means SIGTERM", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
		res, err := Stop(context.Background(), p, 0, 10*time.Second)
		if err != nil || res.Forced || res.Exit.Signal != syscall.SIGTERM {
			t.Fatalf("Stop = %+v, %v", res, err)
		}
	})
	t.Run("ignores SIGTERM: forced after the timeout", func(t *testing.T) {
		p, out := mustStart(t, StartOptions{Argv: []string{buildHelper(t, "ignoreterm")}})
		waitForOutput(t, out, "ready")
		const timeout = 300 * time.Millisecond
		res, err := Stop(context.Background(), p, syscall.SIGTERM, timeout)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Forced || res.Exit.Signal != syscall.SIGKILL || res.Took < timeout {
			t.Fatalf("Stop = %+v; want forced with SIGKILL after %v", res, timeout)
		}
	})
	t.Run("context done forces at once", func(t *testing.T) {
		p, out := mustStart(t, StartOptions{Argv: []string{buildHelper(t, "ignoreterm")}})
		waitForOutput(t, out, "ready")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := Stop(ctx, p, syscall.SIGTERM, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Forced || res.Exit.Signal != syscall.SIGKILL || res.Took > KillWait {
			t.Fatalf("Stop = %+v; want forced at once", res)
		}
	})
	t.Run("context done during the wait", func(t *testing.T) {
		p, out := mustStart(t, StartOptions{Argv: []string{buildHelper(t, "ignoreterm")}})
		waitForOutput(t, out, "ready")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan StopResult, 1)
		go func() {
			res, err := Stop(ctx, p, syscall.SIGTERM, time.Hour)
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		cancel()
		if res := <-done; !res.Forced || res.Exit.Signal != syscall.SIGKILL {
			t.Fatalf("Stop = %+v; want forced", res)
		}
	})
	t.Run("grandchild does not survive", func(t *testing.T) {
		p, out := mustStart(t, StartOptions{Argv: []string{buildHelper(t, "grandchild")}})
		gpid := fieldAfter(t, waitForOutput(t, out, "grandchild "), "grandchild")
		waitForOutput(t, out, "child ready") // it now ignores SIGTERM
		gw, err := WatchPID(gpid)
		if err != nil {
			t.Fatal(err)
		}
		defer gw.Close()

		res, err := Stop(context.Background(), p, syscall.SIGTERM, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.Forced || res.Exit.Signal != syscall.SIGTERM {
			t.Fatalf("Stop = %+v; want the leader to die of SIGTERM", res)
		}
		// Stop has returned: the sweep was sent; wait for it to land.
		if _, err := gw.Wait(waitCtx(t)); err != nil {
			t.Fatalf("grandchild %d survived Stop: %v", gpid, err)
		}
		assertDead(t, gpid)
	})
	t.Run("already exited", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"/bin/sh", "-c", "exit 3"}})
		if _, err := p.Wait(waitCtx(t)); err != nil {
			t.Fatal(err)
		}
		for range 2 { // and again, after the reap
			res, err := Stop(context.Background(), p, syscall.SIGTERM, time.Second)
			if err != nil || res.Forced || res.Exit != (Exit{Code: 3}) {
				t.Fatalf("Stop = %+v, %v; want exit 3, no error", res, err)
			}
		}
	})
	t.Run("adopted process", func(t *testing.T) {
		pid := backgroundedSleep(t)
		id, err := ReadIdentity(pid)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Adopt(id)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		res, err := Stop(context.Background(), p, syscall.SIGTERM, 10*time.Second)
		if err != nil || res.Forced || !res.Exit.Unknown {
			t.Fatalf("Stop = %+v, %v; want unknown exit, not forced", res, err)
		}
		assertDead(t, pid)
	})
}

func TestProcess_Finish(t *testing.T) {
	t.Run("before exit", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
		if _, err := p.Finish(); !errors.Is(err, ErrNotExited) {
			t.Fatalf("Finish = %v, want ErrNotExited", err)
		}
		if _, exited, err := p.Watch().Exited(); err != nil || exited {
			t.Fatalf("early Finish hurt the process: exited %v, %v", exited, err)
		}
	})
	t.Run("sweeps the group after a natural exit", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		p, _ := mustStart(t, StartOptions{Argv: []string{"/bin/sh", "-c", `sleep 3600 & echo $! > "$1"; exit 5`, "sh", pidFile}})
		exit, err := p.Wait(waitCtx(t))
		if err != nil || exit.Code != 5 {
			t.Fatalf("Wait = %v, %v", exit, err)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		left, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		lw, err := WatchPID(left)
		if err != nil {
			t.Fatalf("the sleep left in the group should still run: %v", err)
		}
		defer lw.Close()

		got, err := p.Finish()
		if err != nil || got != exit {
			t.Fatalf("Finish = %v, %v; want %v", got, err, exit)
		}
		if _, err := lw.Wait(waitCtx(t)); err != nil {
			t.Fatalf("sleep %d left in the group survived Finish: %v", left, err)
		}
		assertDead(t, left)
		if _, err := readStat(p.PID()); !errors.Is(err, ErrNoProcess) {
			t.Fatalf("leader not reaped: %v", err)
		}
	})
}

// TestProcess_SignalGroup checks that the group is named through the pidfd,
// not by number: after the leader is reaped (its pid is free for reuse) the
// members left in its group are still reached, and nothing else can be.
func TestProcess_SignalGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	p, _ := mustStart(t, StartOptions{Argv: []string{"/bin/sh", "-c", `sleep 3600 & echo $! > "$1"`, "sh", pidFile}})
	if _, err := p.Wait(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Watch().Reap(); err != nil { // leader gone, group left behind
		t.Fatal(err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	left, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	lw, err := WatchPID(left)
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	if err := SignalGroup(p.Identity(), syscall.SIGKILL); !errors.Is(err, ErrNoProcess) {
		t.Fatalf("SignalGroup by identity after reap = %v, want ErrNoProcess", err)
	}
	if err := p.SignalGroup(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := lw.Wait(waitCtx(t)); err != nil {
		t.Fatalf("group member %d not reached: %v", left, err)
	}
}
