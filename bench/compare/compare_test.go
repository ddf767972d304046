package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
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

// scaleReport has four tools at three N: pm2 did not finish its start at
// 10,000, supervisord finished its start but not its status there.
func scaleReport() Report {
	rep := Report{Idle: "30s", Budget: "4m0s"}
	for _, n := range []int{100, 1000, 10000} {
		f := float64(n) / 1000
		rep.Runs = append(rep.Runs,
			Run{Tool: "floor", N: n, OnlyForks: true, ProcSeconds: 0.5 * f, StatusSeconds: 0.5 * f, RSSKiB: 5000, MarginalKiB: 0.1, StopSeconds: 0.1},
			Run{Tool: "solo", N: n, ProcSeconds: 0.6 * f, StatusSeconds: 0.6 * f, RSSKiB: 30000, MarginalKiB: 9.5, StopSeconds: 0.2},
		)
		sup := Run{Tool: "supervisord", N: n, ProcSeconds: 9 * f, StatusSeconds: 10 * f, RSSKiB: 20000, MarginalKiB: 12, StopSeconds: 3}
		pm2 := Run{Tool: "pm2", N: n, ProcSeconds: 5 * f, StatusSeconds: 5.5 * f, RSSKiB: 90000, MarginalKiB: 43, StopSeconds: 18}
		if n == 10000 {
			sup = Run{Tool: "supervisord", N: n, ProcSeconds: 200, DNF: "status"}
			pm2 = Run{Tool: "pm2", N: n, DNF: "start", DNFLive: 6512}
		}
		rep.Runs = append(rep.Runs, sup, pm2)
	}
	return rep
}

func TestWriteTable_floorAndBudget(t *testing.T) {
	rep := scaleReport()
	rep.Crash = []CrashRun{{Tool: "solo", FinalState: "failed", Restarts: 5, GaveUpAt: 6}}
	var b strings.Builder
	writeTable(&b, rep, []string{"floor", "solo", "supervisord", "pm2"})
	out := b.String()
	for _, want := range []string{
		"| start, as a multiple of the floor | 1.00x | 1.20x | 18.00x | 10.00x |",
		"| SIGKILL + restart: orphans / duplicates | n/a | 0 / 0 | 0 / 0 | 0 / 0 |",
		// supervisord's start is there at 10,000, its status and all after it are not.
		"| start: all N in /proc | 5.00 s | 6.00 s | 200.0 s | did not finish in 240 s |",
		"| start: status says all N running | 5.00 s | 6.00 s | did not finish in 240 s | did not finish in 240 s |",
		"| graceful stop of N | 0.10 s | 0.20 s | did not finish in 240 s | did not finish in 240 s |",
		"| floor | n/a (restarts nothing) |",
		"| tool | N = 100 | N = 1000 | N = 10000 |",
		"| solo | 0.60 ms | 0.60 ms | 0.60 ms |",
		"| supervisord | 9.00 ms | 9.00 ms | 20.00 ms |",
		"| pm2 | 5.00 ms | 5.00 ms | did not finish in 240 s |",
		"| solo | 9.5 KiB | 9.5 KiB | 9.5 KiB |",
		"| supervisord | 12.0 KiB | 12.0 KiB | did not finish in 240 s |",
		// supervisord's slope stops at 1,000, where it last finished.
		"| marginal RSS per service | 0.0 KiB | 0.0 KiB | 0.0 KiB (N = 100 to 1000) | 0.0 KiB (N = 100 to 1000) |",
		"pm2 N=10000: start did not finish within the budget of 4m0s a phase (6512 of 10000 services alive then); it was stopped by pid",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// svgElements parses doc as XML (failing the test if it is not well
// formed) and returns its elements by name and class, and all its text.
func svgElements(t *testing.T, doc []byte) (map[string]int, string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	count := map[string]int{}
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			count[e.Name.Local]++
			for _, a := range e.Attr {
				if a.Name.Local == "class" {
					count[e.Name.Local+"."+a.Value]++
				}
			}
		case xml.CharData:
			text.Write(e)
			text.WriteByte('\n')
		}
	}
	if count["svg"] != 1 {
		t.Fatalf("%d svg elements", count["svg"])
	}
	return count, text.String()
}

func TestCharts(t *testing.T) {
	rep := scaleReport()
	tools := []string{"floor", "solo", "supervisord", "pm2"}
	for _, c := range []struct {
		name             string
		chart            chart
		points, missing  int
		notes, notInText []string
	}{
		// 12 values less pm2's start at 10,000.
		{"start", startChart(rep, tools), 11, 1, []string{"pm2, N = 10,000: did not finish in 240 s"}, []string{"supervisord, N = 10,000"}},
		// 12 less pm2's and supervisord's memory at 10,000.
		{"memory", memoryChart(rep, tools), 10, 2, []string{"pm2, N = 10,000: did not finish in 240 s", "supervisord, N = 10,000: did not finish in 240 s"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			count, text := svgElements(t, c.chart.svg())
			if count["circle.point"] != c.points {
				t.Errorf("%d points, want %d", count["circle.point"], c.points)
			}
			if count["path.missing"] != c.missing {
				t.Errorf("%d missing marks, want %d", count["path.missing"], c.missing)
			}
			for _, n := range c.notes {
				if !strings.Contains(text, n) {
					t.Errorf("no note %q in:\n%s", n, text)
				}
			}
			for _, n := range c.notInText {
				if strings.Contains(text, n) {
					t.Errorf("note %q for a measured point in:\n%s", n, text)
				}
			}
			for _, tool := range tools {
				if !strings.Contains(text, tool) {
					t.Errorf("no legend for %s", tool)
				}
			}
			for _, n := range []string{"100", "1,000", "10,000"} {
				if !strings.Contains(text, n+"\n") {
					t.Errorf("no tick for N = %s", n)
				}
			}
		})
	}
}

// TestChartEscapes: a name with XML's special characters still makes a
// well-formed document, and an empty chart too.
func TestChartEscapes(t *testing.T) {
	c := chart{Title: "a <b> & c", YLabel: "\"y\"", Ns: []int{1, 10}, Series: []series{
		{Name: "x<&>", Points: []point{{N: 1, V: 2}, {N: 10, Note: "failed: <exit 1> & more"}}},
	}}
	count, text := svgElements(t, c.svg())
	if count["circle.point"] != 1 || count["path.missing"] != 1 || !strings.Contains(text, "failed: <exit 1> & more") {
		t.Fatalf("count %v, text:\n%s", count, text)
	}
	svgElements(t, chart{Title: "empty", LogY: true}.svg())
}

func TestCommas(t *testing.T) {
	for n, want := range map[int]string{0: "0", 100: "100", 1000: "1,000", 10000: "10,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
}
