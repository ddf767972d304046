// Command compare runs the same work on Solo, supervisord and pm2, one
// after another on this machine, and prints a table (and writes JSON) of:
// the time from the start command until all N services are in /proc and
// until the tool's status says they run; the supervisor's marginal RSS per
// service and its OS threads; its idle CPU; what is left after a SIGKILL of
// the supervisor and a restart (orphans, duplicates); the time of a
// graceful stop; and what each does with a service that exits 1 at once.
// It also writes the start time and the memory per service against N as
// SVG curves (bench-start.svg, bench-memory.svg).
//
// The fourth tool, "floor", is bench/compare/floor: a process that does
// nothing but fork and exec the same services on GOMAXPROCS workers. Its
// start is the floor: every tool's start is also given as a multiple of
// it, from the same run. Restart and crash-loop measures do not apply to it.
//
// Each tool has -budget for each phase (start, restart, stop): one that
// does not finish a phase in it is stopped by pid, and its cells from that
// phase on say "did not finish in X s", so that N = 10,000 cannot block
// the run. SIGKILL + restart is skipped when N more processes (the
// duplicates a tool may start) would come near pid_max.
//
// Every service is `sleep 3600` with two environment variables that mark
// it (run id and service name), so that the harness finds its own
// processes in /proc and nobody else's. It ends every process it started by
// pid, never by name. supervisord and pm2 are installed when missing
// (apt-get install supervisor; npm install --prefix bench/.node pm2).
//
// Usage (from the repository root; `make bench-compare` runs the first):
//
//	go run ./bench/compare -n 100,1000,10000 -idle 30s -budget 2m
//	go run ./bench/compare -n 20 -idle 3s                # a smoke run
//	go run ./bench/compare -n 1000 -tools floor,solo     # Solo against the floor
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	var (
		nFlag     = flag.String("n", "100,1000,10000", "comma-separated service counts")
		idle      = flag.Duration("idle", 30*time.Second, "idle window over which CPU is measured")
		toolsFlag = flag.String("tools", "floor,solo,supervisord,pm2", "tools to run, in order")
		budgetF   = flag.Duration("budget", budget, "time each tool has for each phase (start, restart, stop) before it is stopped by pid and reported as not finished")
		outDir    = flag.String("out", "bench/out", "where the JSON, the table and the solo binary go")
		soloBin   = flag.String("solo", "", "solo binary (default: build ./cmd/solo into OUT/bin/solo)")
		install   = flag.Bool("install", true, "install supervisord and pm2 when missing")
		crash     = flag.Duration("crash-window", 40*time.Second, "how long to watch the exit-1 service (0 skips it)")
		table     = flag.String("table", "", "print the table of a JSON report written before, write its charts into -out, and run nothing")
	)
	flag.Parse()
	if *budgetF <= 0 {
		fmt.Fprintln(os.Stderr, "bench-compare: -budget must be positive")
		os.Exit(2)
	}
	budget = *budgetF
	if *table != "" {
		if err := printTable(*table, *outDir); err != nil {
			fmt.Fprintln(os.Stderr, "bench-compare:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*nFlag, *idle, *toolsFlag, *outDir, *soloBin, *install, *crash); err != nil {
		fmt.Fprintln(os.Stderr, "bench-compare:", err)
		os.Exit(1)
	}
}

// cleanups run on exit and on SIGINT/SIGTERM: each ends what one scenario
// started, by pid.
var (
	cleanMu  sync.Mutex
	cleanups = map[int]func(){}
	cleanSeq int
)

func onCleanup(f func()) (done func()) {
	cleanMu.Lock()
	defer cleanMu.Unlock()
	cleanSeq++
	id := cleanSeq
	cleanups[id] = f
	return func() {
		cleanMu.Lock()
		g, ok := cleanups[id]
		delete(cleanups, id)
		cleanMu.Unlock()
		if ok {
			g()
		}
	}
}

func cleanAll() {
	cleanMu.Lock()
	fs := make([]func(), 0, len(cleanups))
	for _, f := range cleanups {
		fs = append(fs, f)
	}
	clear(cleanups)
	cleanMu.Unlock()
	for _, f := range fs {
		f()
	}
}

func run(nFlag string, idle time.Duration, toolsFlag, outDir, soloBin string, install bool, crashWindow time.Duration) error {
	began := time.Now()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\n%v: cleaning up\n", s)
		cleanAll()
		os.Exit(1)
	}()
	defer cleanAll()

	var ns []int
	for f := range strings.SplitSeq(nFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-n: %q is not a positive count", f)
		}
		ns = append(ns, n)
	}
	names := strings.Split(toolsFlag, ",")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	outAbs, err := filepath.Abs(outDir)
	if err != nil {
		return err
	}
	// 1,000 services need more descriptors than the usual 1,024 in every
	// supervisor; children inherit the limit.
	raiseNoFile()

	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return err
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		return err
	}
	var tools []tool
	for _, name := range names {
		switch strings.TrimSpace(name) {
		case "floor":
			bin := filepath.Join(outAbs, "bin", "floor")
			logf("building the fork/exec floor into %s", bin)
			if out, err := runCmd(5*time.Minute, nil, "go", "build", "-o", bin, "./bench/compare/floor"); err != nil {
				return fmt.Errorf("build floor: %w\n%s", err, out)
			}
			tools = append(tools, &floorTool{bin: bin})
		case "solo":
			bin := soloBin
			if bin == "" {
				bin = filepath.Join(outAbs, "bin", "solo")
				logf("building solo into %s", bin)
				if out, err := runCmd(5*time.Minute, nil, "go", "build", "-o", bin, "./cmd/solo"); err != nil {
					return fmt.Errorf("build solo: %w\n%s", err, out)
				}
			}
			tools = append(tools, &soloTool{bin: bin})
		case "supervisord":
			if err := ensureSupervisord(install); err != nil {
				return err
			}
			tools = append(tools, &supervisordTool{})
		case "pm2":
			bin, err := ensurePM2(install)
			if err != nil {
				return err
			}
			tools = append(tools, &pm2Tool{bin: bin})
		default:
			return fmt.Errorf("-tools: unknown tool %q (floor, solo, supervisord, pm2)", name)
		}
	}

	rep := Report{
		Started:  began.UTC(),
		Idle:     idle.String(),
		Budget:   budget.String(),
		Versions: map[string]string{},
		Host:     Host{CPUs: runtime.NumCPU(), Kernel: kernel(), Load1: load1()},
		Command:  "go run ./bench/compare " + strings.Join(os.Args[1:], " "),
	}
	var toolNames []string
	for _, t := range tools {
		rep.Versions[t.Name()] = t.Version()
		toolNames = append(toolNames, t.Name())
	}
	for _, n := range ns {
		for _, t := range tools {
			logf("%s: N=%d", t.Name(), n)
			r := scenario(t, n, idle, sleep)
			for _, e := range r.Errors {
				logf("%s: N=%d: error: %s", t.Name(), n, e)
			}
			rep.Runs = append(rep.Runs, r)
		}
	}
	if crashWindow > 0 {
		for _, t := range tools {
			if _, ok := t.(onlyForks); ok {
				continue
			}
			logf("%s: a service that exits 1 at once", t.Name())
			rep.Crash = append(rep.Crash, crashLoop(t, crashWindow, sh))
		}
	}
	rep.Host.Load1At = load1()
	rep.Took = time.Since(began).Round(time.Second).String()

	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	stamp := began.UTC().Format("20060102-150405")
	for _, name := range []string{"compare-" + stamp + ".json", "latest.json"} {
		if err := os.WriteFile(filepath.Join(outDir, name), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	md := markdown(rep, toolNames)
	if err := os.WriteFile(filepath.Join(outDir, "latest.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := writeCharts(rep, toolNames, outDir); err != nil {
		return err
	}
	fmt.Print(md)
	logf("wrote %s, %s and the charts bench-start.svg, bench-memory.svg (took %s)", filepath.Join(outDir, "latest.json"), filepath.Join(outDir, "latest.md"), rep.Took)
	return nil
}

func markdown(rep Report, tools []string) string {
	var md strings.Builder
	fmt.Fprintf(&md, "%d CPUs, kernel %s, load %.2f at start, %.2f at end; %s\n", rep.Host.CPUs, rep.Host.Kernel, rep.Host.Load1, rep.Host.Load1At, versionLine(rep.Versions, tools))
	writeTable(&md, rep, tools)
	return md.String()
}

// printTable prints the table of a report read from JSON and writes its
// charts into outDir.
func printTable(path, outDir string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var tools []string
	seen := map[string]bool{}
	for _, r := range rep.Runs {
		if !seen[r.Tool] {
			seen[r.Tool] = true
			tools = append(tools, r.Tool)
		}
	}
	fmt.Print(markdown(rep, tools))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	return writeCharts(rep, tools, outDir)
}

// writeCharts writes the start and memory curves of rep into dir.
func writeCharts(rep Report, tools []string, dir string) error {
	for name, c := range map[string]chart{
		"bench-start.svg":  startChart(rep, tools),
		"bench-memory.svg": memoryChart(rep, tools),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), c.svg(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func versionLine(v map[string]string, order []string) string {
	var parts []string
	for _, t := range order {
		parts = append(parts, t+": "+v[t])
	}
	return strings.Join(parts, ", ")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// scenario runs one tool with n services: start, idle, SIGKILL and
// restart, graceful stop. A step that fails is recorded and the scenario
// goes on where it can; a phase that does not finish within the budget
// ends the scenario (the tool is stopped by pid) and is recorded in
// r.DNF.
func scenario(t tool, n int, idle time.Duration, sleep string) (r Run) {
	r = Run{Tool: t.Name(), N: n}
	_, r.OnlyForks = t.(onlyForks)
	fail := func(format string, args ...any) { r.Errors = append(r.Errors, fmt.Sprintf(format, args...)) }
	runID := fmt.Sprintf("%s-%d-%d", t.Name(), n, time.Now().UnixNano())
	// Short: unix socket paths live in it.
	dir, err := os.MkdirTemp("", "sb-")
	if err != nil {
		fail("%v", err)
		return r
	}
	dnf := func(phase string) {
		r.DNF = phase
		r.DNFLive = len(markedProcs(runID))
		logf("%s: N=%d: %s did not finish in %v (%d of its services alive); stopping it by pid", t.Name(), n, phase, budget, r.DNFLive)
		for _, l := range logTails(dir, 300) {
			fail("%s", l)
		}
	}
	done := onCleanup(func() {
		t.Close()
		left := markedProcs(runID)
		pids := make([]int, len(left))
		for i, m := range left {
			pids[i] = m.PID
		}
		killPIDs(pids)
		waitGone(pids, 30*time.Second)
		os.RemoveAll(dir)
	})
	defer done()

	svcs := make([]service, n)
	names := make([]string, n)
	for i := range svcs {
		names[i] = fmt.Sprintf("svc-%d", i)
		svcs[i] = service{Name: names[i], Argv: []string{sleep, "3600"}}
	}
	if err := t.Prepare(dir, runID, svcs); err != nil {
		fail("prepare: %v", err)
		return r
	}
	if err := t.Boot(); err != nil {
		fail("boot: %v", err)
		return r
	}
	time.Sleep(time.Second)
	daemon := t.Daemon()
	r.RSSBaseKiB, _ = procStatus(daemon, "VmRSS")
	r.AnonBaseKiB, _ = procStatus(daemon, "RssAnon")
	r.ThreadsBase, _ = procStatus(daemon, "Threads")

	// Start, timed three ways: the start command, the exec'd children in
	// /proc, and the tool's status. The status is polled only once all are
	// in /proc, so that its cost (a CLI run per poll) does not slow the
	// start it measures. Both within one budget from the start command.
	if p, ok := t.(preStarter); ok {
		if err := p.PreStart(); err != nil {
			fail("before start: %v", err)
			return r
		}
	}
	children := newChildCounter(t.Daemon, "sleep")
	cpuStart, _ := cpuTime(daemon)
	start := time.Now()
	deadline := start.Add(budget)
	type startResult struct {
		took time.Duration
		err  error
	}
	startDone := make(chan startResult, 1)
	go func() {
		err := t.Start()
		startDone <- startResult{time.Since(start), err}
	}()
	if err := poll(time.Until(deadline), 10*time.Millisecond, func() (bool, error) { return children.count() >= n, nil }); err != nil {
		dnf("start")
		return r
	}
	r.ProcSeconds = time.Since(start).Seconds()
	if now := t.Daemon(); now > 0 {
		if c, err := cpuTime(now); err == nil {
			if now != daemon {
				cpuStart = 0 // a new supervisor process did the start
			}
			r.StartCPUSeconds = (c - cpuStart).Seconds()
		}
	}
	statusErr := poll(time.Until(deadline), 100*time.Millisecond, func() (bool, error) {
		st, err := t.Status()
		return running(st) >= n, err
	})
	if statusErr != nil {
		if time.Now().After(deadline) {
			dnf("status")
		} else {
			fail("status: %v", statusErr)
		}
		return r
	}
	r.StatusSeconds = time.Since(start).Seconds()
	select {
	case res := <-startDone:
		r.StartCmdSeconds = res.took.Seconds()
		if res.err != nil {
			fail("start: %v", res.err)
		}
	case <-time.After(time.Until(deadline)):
		dnf("start command")
		return r
	}
	daemon = t.Daemon()
	logf("%s: N=%d: in /proc after %.2f s (supervisor CPU %.2f s), running after %.2f s", t.Name(), n, r.ProcSeconds, r.StartCPUSeconds, r.StatusSeconds)

	// Idle.
	time.Sleep(2 * time.Second)
	cpu0, _ := cpuTime(daemon)
	wall0 := time.Now()
	time.Sleep(idle)
	cpu1, _ := cpuTime(daemon)
	r.IdleSeconds = time.Since(wall0).Seconds()
	r.IdleCPUPercent = 100 * float64(cpu1-cpu0) / float64(time.Since(wall0))
	r.RSSKiB, _ = procStatus(daemon, "VmRSS")
	r.AnonKiB, _ = procStatus(daemon, "RssAnon")
	r.Threads, _ = procStatus(daemon, "Threads")
	r.MarginalKiB = float64(r.RSSKiB-r.RSSBaseKiB) / float64(n)
	r.MarginalAnonKiB = float64(r.AnonKiB-r.AnonBaseKiB) / float64(n)
	logf("%s: N=%d: idle %.3f%% of a core, %.1f KiB per service, %d threads", t.Name(), n, r.IdleCPUPercent, r.MarginalKiB, r.Threads)

	reported := map[string]int{}
	if st, err := t.Status(); err == nil {
		for name, s := range st {
			if s.Running {
				reported[name] = s.PID
			}
		}
	}
	switch {
	case r.OnlyForks:
	case !pidRoom(n):
		r.RestartSkipped = fmt.Sprintf("skipped: %d more processes would come near pid_max", n)
		logf("%s: N=%d: SIGKILL + restart %s", t.Name(), n, r.RestartSkipped)
	default:
		var ok bool
		if reported, ok = kill9Restart(t, n, names, runID, &r, fail); !ok {
			dnf("restart")
			return r
		}
	}

	// Graceful stop of what the tool manages now.
	pids := []int{t.Daemon()}
	for _, pid := range reported {
		pids = append(pids, pid)
	}
	stop := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- t.Stop() }()
	left := waitGone(pids, budget)
	if left > 0 {
		dnf("stop")
		return r
	}
	r.StopSeconds = time.Since(stop).Seconds()
	if err := <-stopped; err != nil {
		fail("stop: %v", err)
	}
	r.LeftAfterStop = len(markedProcs(runID))
	logf("%s: N=%d: graceful stop took %.2f s; %d marked processes left", t.Name(), n, r.StopSeconds, r.LeftAfterStop)
	return r
}

// logTails returns the end of each non-empty log a tool wrote at the top
// of dir, to say why it did not finish.
func logTails(dir string, n int) []string {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	more, _ := filepath.Glob(filepath.Join(dir, "*", "*.log"))
	var out []string
	for _, p := range append(paths, more...) {
		b, err := os.ReadFile(p)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%s ends: %s", filepath.Base(p), strings.ReplaceAll(tail(string(b), n), "\n", " | ")))
	}
	return out
}

// kill9Restart SIGKILLs the supervisor, starts it again the way a user
// would, and accounts for what is left (r.Crash, r.RestartSeconds). It
// returns the pids the tool reports then, by service name, and false if
// the tool did not report all n running within the budget. Orphans are
// ended by pid.
func kill9Restart(t tool, n int, names []string, runID string, r *Run, fail func(string, ...any)) (map[string]int, bool) {
	if err := t.Kill9(); err != nil {
		fail("kill -9: %v", err)
		return nil, false
	}
	restart := time.Now()
	deadline := restart.Add(budget)
	if err := t.Restart(); err != nil {
		fail("restart: %v", err)
	}
	var st map[string]svcStatus
	if err := poll(time.Until(deadline), 250*time.Millisecond, func() (bool, error) {
		var err error
		st, err = t.Status()
		return running(st) >= n, err
	}); err != nil {
		if time.Now().After(deadline) {
			return nil, false
		}
		fail("status after restart: %v", err)
	} else {
		r.RestartSeconds = time.Since(restart).Seconds()
	}
	time.Sleep(2 * time.Second) // let anything still starting show up
	if s, err := t.Status(); err == nil {
		st = s
	}
	reported := map[string]int{}
	for name, s := range st {
		if s.Running {
			reported[name] = s.PID
		}
	}
	live := markedProcs(runID)
	r.Crash = account(live, reported, names)
	logf("%s: N=%d: after SIGKILL and restart: %d live, %d orphans, %d duplicates, %d missing", t.Name(), n, r.Crash.Live, r.Crash.Orphans, r.Crash.Duplicates, r.Crash.Missing)
	managed := map[int]bool{}
	for _, pid := range reported {
		managed[pid] = true
	}
	var orphans []int
	for _, m := range live {
		if !managed[m.PID] {
			orphans = append(orphans, m.PID)
		}
	}
	killPIDs(orphans)
	waitGone(orphans, 30*time.Second)
	return reported, true
}

// pidRoom reports whether n more processes fit under pid_max with room to
// spare for everyone else on the machine: a supervisor that does not
// re-adopt its services after a SIGKILL starts n more next to them.
func pidRoom(n int) bool {
	max, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return true
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(max)))
	if err != nil {
		return true
	}
	return tasks()+n+4096 <= limit
}

// tasks is the number of threads on the machine (/proc/loadavg's
// running/total field): each holds a pid.
func tasks() int {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 4 {
		return 0
	}
	_, total, _ := strings.Cut(f[3], "/")
	v, _ := strconv.Atoi(total)
	return v
}

func running(st map[string]svcStatus) int {
	n := 0
	for _, s := range st {
		if s.Running {
			n++
		}
	}
	return n
}

// terminal reports whether a state means the tool gave up on a service.
func terminal(state string) bool {
	switch state {
	case "failed", "exited", "FATAL", "EXITED", "errored", "stopped":
		return true
	}
	return false
}

// preStarter is a tool with work to do before the timed start.
type preStarter interface {
	PreStart() error
}

// recoverer is a tool that can bring a given-up service back.
type recoverer interface {
	Recover(name string) error
}

func (t *soloTool) Recover(name string) error {
	_, err := t.cli(time.Minute, "recover", name)
	return err
}

// crashLoop watches a service that exits 1 at once for window.
func crashLoop(t tool, window time.Duration, sh string) (c CrashRun) {
	c = CrashRun{Tool: t.Name(), Restarts: -1}
	runID := fmt.Sprintf("%s-crash-%d", t.Name(), time.Now().UnixNano())
	dir, err := os.MkdirTemp("", "sb-")
	if err != nil {
		c.Error = err.Error()
		return c
	}
	done := onCleanup(func() {
		t.Stop()
		t.Close()
		left := markedProcs(runID)
		pids := make([]int, len(left))
		for i, m := range left {
			pids[i] = m.PID
		}
		killPIDs(pids)
		os.RemoveAll(dir)
	})
	defer done()
	svc := service{Name: "crash", Argv: []string{sh, "-c", "exit 1"}, Crash: true}
	if err := t.Prepare(dir, runID, []service{svc}); err != nil {
		c.Error = err.Error()
		return c
	}
	if err := t.Boot(); err != nil {
		c.Error = "boot: " + err.Error()
		return c
	}
	if p, ok := t.(preStarter); ok {
		if err := p.PreStart(); err != nil {
			c.Error = "before start: " + err.Error()
			return c
		}
	}
	start := time.Now()
	if err := t.Start(); err != nil {
		c.Error = "start: " + err.Error()
		return c
	}
	var states []string
	for time.Since(start) < window {
		st, err := t.Status()
		if err == nil {
			if s, ok := st["crash"]; ok {
				if len(states) == 0 || states[len(states)-1] != s.State {
					states = append(states, s.State)
				}
				c.FinalState = s.State
				if t.Name() != "supervisord" { // supervisorctl does not count restarts
					c.Restarts = s.Restarts
				}
				if terminal(s.State) {
					c.GaveUpAt = time.Since(start).Seconds()
					break
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Timeline = strings.Join(states, " -> ")
	if rc, ok := t.(recoverer); ok && c.GaveUpAt > 0 {
		if err := rc.Recover("crash"); err != nil {
			c.Recover = "recover failed: " + tail(err.Error(), 120)
		} else {
			back := ""
			poll(5*time.Second, 50*time.Millisecond, func() (bool, error) {
				st, err := t.Status()
				if s, ok := st["crash"]; ok && s.State != c.FinalState {
					back = s.State
					return true, nil
				}
				return false, err
			})
			if back != "" {
				c.Recover = fmt.Sprintf("`solo recover crash` brought it back (%s)", back)
			} else {
				c.Recover = "`solo recover crash` did not bring it back within 5 s"
			}
		}
	}
	return c
}

// raiseNoFile lifts the soft limit of open files to the hard limit (at
// least 65,536 when allowed).
func raiseNoFile() {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return
	}
	want := max(rl.Max, 65536)
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}) != nil {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

func ensureSupervisord(install bool) error {
	if _, err := exec.LookPath("supervisord"); err == nil {
		return nil
	}
	if !install {
		return fmt.Errorf("supervisord is not installed (apt-get install supervisor)")
	}
	logf("installing supervisord: apt-get install -y supervisor")
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	if _, err := runCmd(10*time.Minute, env, "apt-get", "install", "-y", "-q", "supervisor"); err != nil {
		if _, err := runCmd(10*time.Minute, env, "apt-get", "update", "-q"); err != nil {
			return err
		}
		if _, err := runCmd(10*time.Minute, env, "apt-get", "install", "-y", "-q", "supervisor"); err != nil {
			return err
		}
	}
	_, err := exec.LookPath("supervisord")
	return err
}

// ensurePM2 returns the pm2 of bench/.node, installing it there with npm
// when missing.
func ensurePM2(install bool) (string, error) {
	prefix, err := filepath.Abs(filepath.Join("bench", ".node"))
	if err != nil {
		return "", err
	}
	bin := filepath.Join(prefix, "node_modules", ".bin", "pm2")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if !install {
		return "", fmt.Errorf("pm2 is not installed (npm install --prefix bench/.node pm2)")
	}
	logf("installing pm2: npm install --prefix %s pm2", prefix)
	if _, err := runCmd(10*time.Minute, nil, "npm", "install", "--no-audit", "--no-fund", "--prefix", prefix, "pm2"); err != nil {
		return "", err
	}
	return bin, nil
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
