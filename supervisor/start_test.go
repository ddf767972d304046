package supervisor

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStart(t *testing.T) {
	t.Run("environment, dir, stdin and output", func(t *testing.T) {
		dir := t.TempDir()
		script := `readlink /proc/self/fd/0; readlink /proc/self/fd/1; echo "FOO=$FOO"; pwd; echo oops >&2`
		p, out := mustStart(t, StartOptions{
			Argv: []string{"/bin/sh", "-c", script},
			Env:  []string{"FOO=bar"},
			Dir:  dir,
		})
		if exit, err := p.Wait(waitCtx(t)); err != nil || !exit.Success() {
			t.Fatalf("Wait = %v, %v", exit, err)
		}
		if _, err := p.Finish(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Join([]string{"/dev/null", out, "FOO=bar", dir, "oops", ""}, "\n")
		if string(b) != want {
			t.Fatalf("output:\n%s\nwant:\n%s", b, want)
		}
	})
	t.Run("own process group", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
		st, err := readStat(p.PID())
		if err != nil {
			t.Fatal(err)
		}
		if st.PGID != p.PID() || st.PGID == syscall.Getpgrp() {
			t.Fatalf("pgid %d, pid %d, ours %d: want its own group", st.PGID, p.PID(), syscall.Getpgrp())
		}
		if !p.GroupLeader() || p.Adopted() {
			t.Fatalf("GroupLeader %v, Adopted %v", p.GroupLeader(), p.Adopted())
		}
	})
	t.Run("nil output is /dev/null", func(t *testing.T) {
		p, err := Start(StartOptions{Argv: []string{"sleep", "3600"}})
		if err != nil {
			t.Fatal(err)
		}
		defer mustKill(t, p)
		link, err := os.Readlink("/proc/" + strconv.Itoa(p.PID()) + "/fd/1")
		if err != nil || link != "/dev/null" {
			t.Fatalf("stdout -> %q, %v", link, err)
		}
	})
	t.Run("relative path taken from Dir", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\nexit 4\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		p, _ := mustStart(t, StartOptions{Argv: []string{"./run.sh"}, Dir: dir})
		if exit, err := p.Wait(waitCtx(t)); err != nil || exit.Code != 4 {
			t.Fatalf("Wait = %v, %v", exit, err)
		}
	})
	t.Run("errors name the program", func(t *testing.T) {
		_, err := Start(StartOptions{Argv: []string{"/nonexistent/foo"}})
		if err == nil || !strings.HasPrefix(err.Error(), `start "/nonexistent/foo": `) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v", err)
		}
		_, err = Start(StartOptions{Argv: []string{"no-such-program-solo"}})
		if err == nil || !strings.Contains(err.Error(), `start "no-such-program-solo"`) {
			t.Fatalf("err = %v", err)
		}
		if _, err := Start(StartOptions{}); !errors.Is(err, ErrNoArgv) {
			t.Fatalf("err = %v, want ErrNoArgv", err)
		}
	})
	t.Run("pipe output refused", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		if p, err := Start(StartOptions{Argv: []string{"true"}, Output: w}); !errors.Is(err, ErrPipeOutput) {
			if p != nil {
				mustKill(t, p)
			}
			t.Fatalf("err = %v, want ErrPipeOutput", err)
		}
	})
}

func TestAdopt(t *testing.T) {
	t.Run("not our child: exit is unknown", func(t *testing.T) {
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
		if !p.Adopted() || p.GroupLeader() {
			t.Fatalf("Adopted %v, GroupLeader %v; want adopted, not a leader", p.Adopted(), p.GroupLeader())
		}
		if _, exited, err := p.Watch().Exited(); err != nil || exited {
			t.Fatalf("Exited = %v, %v before any signal", exited, err)
		}
		if err := Signal(id, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		exit, err := p.Wait(waitCtx(t))
		if err != nil || !exit.Unknown || exit.Success() {
			t.Fatalf("Wait = %+v, %v; want unknown status", exit, err)
		}
		if got, err := p.Finish(); err != nil || !got.Unknown {
			t.Fatalf("Finish = %+v, %v", got, err)
		}
		assertDead(t, pid)
	})
	t.Run("recycled pid is refused", func(t *testing.T) {
		p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
		id := p.Identity()
		id.StartTicks++
		if _, err := Adopt(id); !errors.Is(err, ErrNotSameProcess) {
			t.Fatalf("Adopt = %v, want ErrNotSameProcess", err)
		}
	})
	t.Run("gone", func(t *testing.T) {
		boot, _ := BootID()
		if _, err := Adopt(Identity{PID: reapedPID(t), StartTicks: 1, BootID: boot}); !errors.Is(err, ErrNoProcess) {
			t.Fatalf("Adopt = %v, want ErrNoProcess", err)
		}
	})
}

func TestBackoff_Delay(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2}
	cases := []struct {
		n    int
		rnd  float64
		want time.Duration
	}{
		{1, 0.5, 100 * time.Millisecond}, // no jitter at the middle
		{2, 0.5, 200 * time.Millisecond},
		{3, 0.5, 400 * time.Millisecond},
		{4, 0.5, 800 * time.Millisecond},
		{5, 0.5, time.Second}, // capped
		{50, 0.5, time.Second},
		{1, 0, 80 * time.Millisecond}, // -20%
		{1, 0.999999, 120*time.Millisecond - 20*time.Nanosecond},
		{5, 0, 800 * time.Millisecond},
	}
	for _, c := range cases {
		got := b.Delay(c.n, c.rnd)
		if d := got - c.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("Delay(%d, %v) = %v, want %v", c.n, c.rnd, got, c.want)
		}
	}
	if got := (Backoff{}).Delay(1, 0.5); got != DefaultBackoffBase {
		t.Errorf("zero Backoff: Delay(1) = %v, want the default base %v", got, DefaultBackoffBase)
	}
}
