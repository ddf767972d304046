package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	st, err := parseStat([]byte("4242 (sleep (x) y) S 17 4242 4242 0 -1 4194560 87 0 0 0 0 0 0 0 20 0 1 0 123456 5468160 220"))
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != 4242 || st.PPID != 17 || st.Comm != "sleep (x) y" || st.State != 'S' {
		t.Fatalf("got %+v", st)
	}
	if _, err := parseStat([]byte("garbage")); err == nil {
		t.Fatal("garbage parsed")
	}
}

func TestEnvironValue(t *testing.T) {
	env := []byte("PATH=/bin\x00BENCH_RUN=r1\x00BENCH_SVC=svc-3\x00")
	if v, ok := environValue(env, envRun); !ok || v != "r1" {
		t.Fatalf("run: %q %v", v, ok)
	}
	if v, ok := environValue(env, envSvc); !ok || v != "svc-3" {
		t.Fatalf("svc: %q %v", v, ok)
	}
	if _, ok := environValue(env, "BENCH"); ok {
		t.Fatal("a prefix of a key matched")
	}
}

func TestAccount(t *testing.T) {
	want := []string{"a", "b", "c", "d"}
	cases := []struct {
		name     string
		live     []marked
		reported map[string]int
		exp      crashAccount
	}{
		{"clean re-adoption", []marked{{1, "a"}, {2, "b"}, {3, "c"}, {4, "d"}}, map[string]int{"a": 1, "b": 2, "c": 3, "d": 4},
			crashAccount{Live: 4, Managed: 4}},
		{"orphans and duplicates", []marked{{1, "a"}, {2, "b"}, {3, "c"}, {4, "d"}, {11, "a"}, {12, "b"}, {13, "c"}, {14, "d"}},
			map[string]int{"a": 11, "b": 12, "c": 13, "d": 14},
			crashAccount{Live: 8, Managed: 4, Orphans: 4, Duplicates: 4}},
		{"one lost", []marked{{1, "a"}, {2, "b"}, {3, "c"}}, map[string]int{"a": 1, "b": 2, "c": 3, "d": 0},
			crashAccount{Live: 3, Managed: 3, Missing: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := account(c.live, c.reported, want); got != c.exp {
				t.Fatalf("got %+v, want %+v", got, c.exp)
			}
		})
	}
}

func TestParseSupervisorStatus(t *testing.T) {
	out := `svc-0                            RUNNING   pid 101, uptime 0:00:05
svc-1                            STARTING
crash                            FATAL     Exited too quickly (process log may have details)
unix:///tmp/x/s.sock refused connection
`
	m := parseSupervisorStatus(out)
	if len(m) != 3 {
		t.Fatalf("got %d entries: %+v", len(m), m)
	}
	if s := m["svc-0"]; !s.Running || s.PID != 101 {
		t.Fatalf("svc-0: %+v", s)
	}
	if s := m["crash"]; s.Running || s.State != "FATAL" {
		t.Fatalf("crash: %+v", s)
	}
}

func TestParsePM2List(t *testing.T) {
	out := []byte("[PM2] Spawning PM2 daemon\n" + `[{"name":"svc-0","pid":77,"pm2_env":{"status":"online","restart_time":0}},{"name":"crash","pid":0,"pm2_env":{"status":"errored","restart_time":15}}]`)
	m, err := parsePM2List(out)
	if err != nil {
		t.Fatal(err)
	}
	if s := m["svc-0"]; !s.Running || s.PID != 77 {
		t.Fatalf("svc-0: %+v", s)
	}
	if s := m["crash"]; s.Running || s.Restarts != 15 || s.State != "errored" {
		t.Fatalf("crash: %+v", s)
	}
	if _, err := parsePM2List([]byte("no json")); err == nil {
		t.Fatal("no JSON parsed")
	}
}

func TestShellJoin(t *testing.T) {
	if got := shellJoin([]string{"/bin/sh", "-c", "exit 1"}); got != `/bin/sh -c 'exit 1'` {
		t.Fatalf("got %s", got)
	}
}

func TestWriteTable(t *testing.T) {
	rep := Report{Idle: "60s", Runs: []Run{
		{Tool: "solo", N: 100, ProcSeconds: 0.21, StatusSeconds: 0.3, MarginalKiB: 12.5, ThreadsBase: 7, Threads: 9, IdleCPUPercent: 0.001, StopSeconds: 0.05},
		{Tool: "pm2", N: 100, ProcSeconds: 1.5, Crash: crashAccount{Orphans: 100, Duplicates: 100}, Errors: []string{"stop: boom"}},
	}, Crash: []CrashRun{
		{Tool: "solo", FinalState: "failed", Restarts: 5, GaveUpAt: 6.4, Recover: "`solo recover crash` brought it back (backoff)"},
		{Tool: "supervisord", FinalState: "FATAL", Restarts: -1, GaveUpAt: 7.4},
	}}
	var b strings.Builder
	writeTable(&b, rep, []string{"solo", "supervisord", "pm2"})
	out := b.String()
	for _, want := range []string{
		"N = 100 (idle window 60s)",
		"| measure | solo | supervisord | pm2 |",
		"| start: all N in /proc | 0.21 s | n/a | 1.50 s (error) |",
		"| marginal RSS per service | 12.5 KiB | n/a | 0.0 KiB |",
		"| supervisor OS threads (empty -> N) | 7 -> 9 | n/a | 0 -> 0 |",
		"| SIGKILL + restart: orphans / duplicates | 0 / 0 | n/a | 100 / 100 |",
		"| solo | failed after 5 restarts, gave up at 6.4 s; `solo recover crash` brought it back (backoff) |",
		"| supervisord | FATAL, gave up at 7.4 s |",
		"error: pm2 N=100: stop: boom",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
}

// TestChildCounter counts this test's own exec'd children.
func TestChildCounter(t *testing.T) {
	d, err := spawn(os.DevNull, nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		killPIDs([]int{d.pid()})
		d.wait(10 * time.Second)
	}()
	c := newChildCounter(os.Getpid, "sleep")
	if err := poll(10*time.Second, 10*time.Millisecond, func() (bool, error) { return c.count() >= 1, nil }); err != nil {
		t.Fatalf("child not counted: %v", err)
	}
	if !alive(d.pid()) {
		t.Fatal("alive says no")
	}
}

func TestWriteTable_slope(t *testing.T) {
	rep := Report{Idle: "60s", Runs: []Run{
		{Tool: "solo", N: 100, RSSKiB: 20_000},
		{Tool: "solo", N: 1000, RSSKiB: 29_000},
	}}
	var b strings.Builder
	writeTable(&b, rep, []string{"solo"})
	if !strings.Contains(b.String(), "Between N = 100 and N = 1000") || !strings.Contains(b.String(), "| marginal RSS per service | 10.0 KiB |") {
		t.Fatalf("no slope row:\n%s", b.String())
	}
}
