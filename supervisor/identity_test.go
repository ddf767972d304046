package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// statLine builds a /proc/PID/stat line with the given comm.
func statLine(pid int, comm string, pgrp int, start uint64) string {
	return fmt.Sprintf("%d (%s) S 1 %d %d 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 %d 1000 100 18446744073709551615\n",
		pid, comm, pgrp, pgrp, start)
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    procStat
		wantErr bool
	}{
		{name: "plain", line: statLine(1234, "sleep", 1234, 987654),
			want: procStat{PID: 1234, Comm: "sleep", State: 'S', PPID: 1, PGID: 1234, StartTicks: 987654}},
		{name: "comm with spaces", line: statLine(7, "my great prog", 5, 42),
			want: procStat{PID: 7, Comm: "my great prog", State: 'S', PPID: 1, PGID: 5, StartTicks: 42}},
		{name: "comm with parentheses", line: statLine(8, "a) S 1 2 3 (b", 8, 4242),
			want: procStat{PID: 8, Comm: "a) S 1 2 3 (b", State: 'S', PPID: 1, PGID: 8, StartTicks: 4242}},
		{name: "comm is a close paren", line: statLine(9, ")", 9, 1),
			want: procStat{PID: 9, Comm: ")", State: 'S', PPID: 1, PGID: 9, StartTicks: 1}},
		{name: "comm is empty", line: statLine(10, "", 10, 2),
			want: procStat{PID: 10, Comm: "", State: 'S', PPID: 1, PGID: 10, StartTicks: 2}},
		{name: "max start ticks", line: statLine(11, "x", 11, 1<<64-1),
			want: procStat{PID: 11, Comm: "x", State: 'S', PPID: 1, PGID: 11, StartTicks: 1<<64 - 1}},
		{name: "no parentheses", line: "1234 sleep S 1 1234", wantErr: true},
		{name: "too few fields", line: "1234 (sleep) S 1 1234 1234 0", wantErr: true},
		{name: "bad pid", line: "x12 (sleep) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", wantErr: true},
		{name: "bad start ticks", line: "12 (sleep) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5 0 0", wantErr: true},
		{name: "empty", line: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.line))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseStat(%q) = %+v, want an error", tt.line, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseStat(%q): %v", tt.line, err)
			}
			if got != tt.want {
				t.Fatalf("parseStat(%q) = %+v, want %+v", tt.line, got, tt.want)
			}
		})
	}
}

func TestReadIdentity(t *testing.T) {
	t.Run("live process with a hostile comm", func(t *testing.T) {
		// comm is the basename of the path given to execve.
		exe := filepath.Join(t.TempDir(), "a b) (c")
		if err := os.Symlink("/usr/bin/sleep", exe); err != nil {
			t.Fatal(err)
		}
		p, _ := mustStart(t, StartOptions{Argv: []string{exe, "3600"}})
		st, err := readStat(p.PID())
		if err != nil {
			t.Fatal(err)
		}
		if st.Comm != "a b) (c" || st.PGID != p.PID() {
			t.Fatalf("stat = %+v, want comm %q and its own group", st, "a b) (c")
		}
		id, err := ReadIdentity(p.PID())
		if err != nil {
			t.Fatal(err)
		}
		boot, _ := BootID()
		if id != p.Identity() || id.StartTicks == 0 || id.BootID != boot || boot == "" {
			t.Fatalf("ReadIdentity = %+v, recorded %+v, boot %q", id, p.Identity(), boot)
		}
	})
	t.Run("missing process", func(t *testing.T) {
		pid := reapedPID(t)
		if _, err := ReadIdentity(pid); !errors.Is(err, ErrNoProcess) {
			t.Fatalf("ReadIdentity(reaped %d) = %v, want ErrNoProcess", pid, err)
		}
	})
}

// reapedPID returns the pid of a child that has exited and been reaped.
func reapedPID(t *testing.T) int {
	t.Helper()
	p, _ := mustStart(t, StartOptions{Argv: []string{"/bin/sh", "-c", "exit 0"}})
	if _, err := p.Wait(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	return p.PID()
}

func TestVerify(t *testing.T) {
	p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
	id := p.Identity()
	recycled := id
	recycled.StartTicks++
	rebooted := id
	rebooted.BootID = "00000000-0000-0000-0000-000000000000"
	gone := Identity{PID: reapedPID(t), StartTicks: 1, BootID: id.BootID}

	tests := []struct {
		name string
		id   Identity
		want error
	}{
		{"same process", id, nil},
		{"recycled pid", recycled, ErrNotSameProcess},
		{"other boot", rebooted, ErrNotSameProcess},
		{"gone", gone, ErrNoProcess},
		{"pid 0", Identity{PID: 0, BootID: id.BootID}, ErrInvalidPID},
		{"pid 1", Identity{PID: 1, BootID: id.BootID}, ErrInvalidPID},
		{"pid -1", Identity{PID: -1, BootID: id.BootID}, ErrInvalidPID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.id)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("Verify(%+v) = %v, want %v", tt.id, err, tt.want)
			}
		})
	}
}

// TestSignal_RecycledPID checks invariant I4: a signal aimed at a record
// whose pid now belongs to another process is refused and not delivered.
func TestSignal_RecycledPID(t *testing.T) {
	signallers := []struct {
		name string
		fn   func(Identity, syscall.Signal) error
	}{
		{"SignalGroup", SignalGroup},
		{"Signal", Signal},
	}
	for _, s := range signallers {
		t.Run(s.name, func(t *testing.T) {
			p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
			stale := p.Identity()
			stale.StartTicks-- // the record of an earlier process with this pid

			if err := s.fn(stale, syscall.SIGKILL); !errors.Is(err, ErrNotSameProcess) {
				t.Fatalf("%s(stale, SIGKILL) = %v, want ErrNotSameProcess", s.name, err)
			}
			// Had the SIGKILL been delivered, it would be what the
			// process died of; SIGKILL is acted on before SIGTERM.
			if err := s.fn(p.Identity(), syscall.SIGTERM); err != nil {
				t.Fatalf("%s(live, SIGTERM): %v", s.name, err)
			}
			exit, err := p.Wait(waitCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if exit.Signal != syscall.SIGTERM {
				t.Fatalf("exit = %v, want killed by SIGTERM only", exit)
			}
		})
	}
}

func TestSignalGroup(t *testing.T) {
	t.Run("not a group leader", func(t *testing.T) {
		pid := backgroundedSleep(t)
		id, err := ReadIdentity(pid)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = Signal(id, syscall.SIGKILL) })
		if err := SignalGroup(id, syscall.SIGTERM); !errors.Is(err, ErrNotGroupLeader) {
			t.Fatalf("SignalGroup(non-leader) = %v, want ErrNotGroupLeader", err)
		}
		if err := Verify(id); err != nil {
			t.Fatalf("non-leader was hurt: %v", err)
		}
	})
	t.Run("whole group", func(t *testing.T) {
		p, out := mustStart(t, StartOptions{Argv: []string{buildHelper(t, "grandchild")}})
		gpid := fieldAfter(t, waitForOutput(t, out, "grandchild "), "grandchild")
		gw, err := WatchPID(gpid)
		if err != nil {
			t.Fatal(err)
		}
		defer gw.Close()
		if err := SignalGroup(p.Identity(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if _, err := gw.Wait(waitCtx(t)); err != nil {
			t.Fatalf("grandchild did not die: %v", err)
		}
		if exit, err := p.Wait(waitCtx(t)); err != nil || exit.Signal != syscall.SIGKILL {
			t.Fatalf("leader exit = %v, %v; want SIGKILL", exit, err)
		}
	})
}

// backgroundedSleep starts "sleep 3600" through a shell that backgrounds it
// and exits, so that the sleep is not our child and not a group leader. It
// returns the sleep's pid; the caller kills it.
func backgroundedSleep(t *testing.T) int {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pid")
	sh, _ := mustStart(t, StartOptions{Argv: []string{"/bin/sh", "-c", `sleep 3600 & echo $! > "$1"`, "sh", pidFile}})
	if exit, err := sh.Wait(waitCtx(t)); err != nil || !exit.Success() {
		t.Fatalf("shell: %v, %v", exit, err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	// Reap the shell but do not sweep its group: the sleep is in it.
	if _, err := sh.Watch().Reap(); err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestReadEnvVar(t *testing.T) {
	p, _ := mustStart(t, StartOptions{
		Argv: []string{"/usr/bin/sleep", "3600"},
		Env:  []string{"A=1", "SOLO_SERVICE=default/web", "EMPTY=", "SOLO_SERVICEX=no"},
	})
	tests := []struct {
		key, want string
		ok        bool
	}{
		{"SOLO_SERVICE", "default/web", true},
		{"A", "1", true},
		{"EMPTY", "", true},
		{"SOLO", "", false},
		{"MISSING", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			v, ok, err := ReadEnvVar(p.PID(), tt.key)
			if err != nil || v != tt.want || ok != tt.ok {
				t.Fatalf("ReadEnvVar(%s) = %q, %v, %v; want %q, %v", tt.key, v, ok, err, tt.want, tt.ok)
			}
		})
	}
	t.Run("gone", func(t *testing.T) {
		if _, _, err := ReadEnvVar(reapedPID(t), "A"); !errors.Is(err, ErrNoProcess) {
			t.Fatalf("err = %v, want ErrNoProcess", err)
		}
	})
}

func TestListPIDs(t *testing.T) {
	p, _ := mustStart(t, StartOptions{Argv: []string{"sleep", "3600"}})
	pids, err := ListPIDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{os.Getpid(), p.PID(), 1} {
		if !slices.Contains(pids, want) {
			t.Errorf("ListPIDs() lacks %d", want)
		}
	}
}

// TestRunning_Zombie: a process that exited but is not reaped keeps its
// identity (Verify passes: its pid is still reserved) but is not running.
func TestRunning_Zombie(t *testing.T) {
	proc, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Wait() })
	id, err := ReadIdentity(proc.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// Learn the exit without reaping, so the child stays a zombie.
	w, err := WatchPID(proc.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := Verify(id); err != nil {
		t.Fatalf("Verify(zombie) = %v, want nil: its pid is still its own", err)
	}
	if Running(id) {
		t.Fatal("Running(zombie) = true")
	}
	self, err := ReadIdentity(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !Running(self) {
		t.Fatal("Running(self) = false")
	}
}
