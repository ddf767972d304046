package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// service is one service of a scenario, the same for every tool.
type service struct {
	Name string
	Argv []string
	// Crash marks the service that exits 1 at once: each tool gets its
	// own default restart behaviour for it.
	Crash bool
}

// svcStatus is one service as the tool's own status command reports it.
type svcStatus struct {
	PID      int
	Running  bool
	State    string
	Restarts int
}

// tool drives one supervisor through its own commands, as a user would.
type tool interface {
	Name() string
	Version() string
	// Prepare writes the tool's configuration for svcs into dir; run
	// marks every service's environment.
	Prepare(dir, run string, svcs []service) error
	// Boot starts the supervisor with no services and returns once it
	// answers.
	Boot() error
	// Start is the start command for every prepared service.
	Start() error
	// Status is the tool's own view, by service name.
	Status() (map[string]svcStatus, error)
	// Daemon is the pid of the supervising process.
	Daemon() int
	// Kill9 SIGKILLs the supervising process and waits until it is gone.
	Kill9() error
	// Restart starts the supervisor again after Kill9, with the same
	// command a user would run to get their services back.
	Restart() error
	// Stop stops every service and the supervisor gracefully, the tool's
	// way, and returns when its command does.
	Stop() error
	// Close ends whatever is left of the supervisor, by pid.
	Close()
}

// budget is the time each tool has for each phase of a scenario (start,
// restart, stop): a tool that does not finish a phase in it is stopped by
// pid, and the report says it did not finish (-budget).
var budget = 2 * time.Minute

// within caps a command's timeout at the budget.
func within(d time.Duration) time.Duration { return min(d, budget) }

// runCmd runs a command with env added to the harness's environment and
// returns its combined output.
func runCmd(timeout time.Duration, env []string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, tail(out.String(), 400))
	}
	return out.Bytes(), nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// daemonProc is a supervisor the harness runs as its own child.
type daemonProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func spawn(logPath string, env []string, name string, args ...string) (*daemonProc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that a Ctrl-C of the harness reaches the
	// harness only, which then cleans up by pid.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	d := &daemonProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	return d, nil
}

func (d *daemonProc) pid() int {
	if d == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

func (d *daemonProc) exited() bool {
	if d == nil {
		return true
	}
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func (d *daemonProc) signal(sig syscall.Signal) {
	if d != nil && !d.exited() {
		d.cmd.Process.Signal(sig)
	}
}

func (d *daemonProc) wait(timeout time.Duration) error {
	if d == nil {
		return nil
	}
	select {
	case <-d.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("pid %d still running after %v", d.pid(), timeout)
	}
}

// poll calls f every interval until it returns true or an error, or
// timeout.
func poll(timeout, interval time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := f()
		if ok {
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("timed out after %v: %w", timeout, last)
			}
			return fmt.Errorf("timed out after %v", timeout)
		}
		time.Sleep(interval)
	}
}

// ---- Solo ----

type soloTool struct {
	bin, dir, run string
	d             *daemonProc
}

func (t *soloTool) Name() string    { return "solo" }
func (t *soloTool) Version() string { return "this tree" }

func (t *soloTool) Prepare(dir, run string, svcs []service) error {
	t.dir, t.run = dir, run
	var b strings.Builder
	b.WriteString("services:\n")
	for _, s := range svcs {
		argv, _ := json.Marshal(s.Argv)
		fmt.Fprintf(&b, "  - name: %s\n    command: %s\n    env: {%s: %q, %s: %q}\n", s.Name, argv, envRun, run, envSvc, s.Name)
	}
	return os.WriteFile(filepath.Join(dir, "services.yaml"), []byte(b.String()), 0o644)
}

func (t *soloTool) cli(timeout time.Duration, args ...string) ([]byte, error) {
	return runCmd(timeout, nil, t.bin, append([]string{"--data-dir", t.dir, "--timeout", timeout.String()}, args...)...)
}

func (t *soloTool) Boot() error {
	d, err := spawn(filepath.Join(t.dir, "daemon.log"), nil, t.bin, "daemon", "--data-dir", t.dir)
	if err != nil {
		return err
	}
	t.d = d
	return poll(60*time.Second, 20*time.Millisecond, func() (bool, error) {
		if d.exited() {
			return false, errors.New("solo daemon exited; see daemon.log")
		}
		_, err := t.cli(5*time.Second, "ls")
		return err == nil, err
	})
}

func (t *soloTool) Start() error {
	_, err := t.cli(budget, "apply", "-f", filepath.Join(t.dir, "services.yaml"))
	return err
}

func (t *soloTool) Status() (map[string]svcStatus, error) {
	out, err := t.cli(within(time.Minute), "ls", "--json")
	if err != nil {
		return nil, err
	}
	var views []struct {
		Name     string `json:"name"`
		State    string `json:"state"`
		PID      int    `json:"pid"`
		Restarts int    `json:"restarts"`
	}
	if err := json.Unmarshal(out, &views); err != nil {
		return nil, fmt.Errorf("solo ls: %w", err)
	}
	m := make(map[string]svcStatus, len(views))
	for _, v := range views {
		m[v.Name] = svcStatus{PID: v.PID, Running: v.State == "running", State: v.State, Restarts: v.Restarts}
	}
	return m, nil
}

func (t *soloTool) Daemon() int { return t.d.pid() }

func (t *soloTool) Kill9() error {
	t.d.signal(syscall.SIGKILL)
	return t.d.wait(30 * time.Second)
}

func (t *soloTool) Restart() error {
	if err := t.Boot(); err != nil {
		return err
	}
	return t.Start() // idempotent: brings nothing twice
}

func (t *soloTool) Stop() error {
	t.d.signal(syscall.SIGTERM)
	return t.d.wait(budget)
}

func (t *soloTool) Close() {
	if t.d != nil && !t.d.exited() {
		t.d.signal(syscall.SIGKILL)
		t.d.wait(10 * time.Second)
	}
}

// ---- supervisord ----

type supervisordTool struct {
	dir, conf string
	progs     string // programs, written to conf.d by PreStart
	mu        sync.Mutex
	d         *daemonProc // replaced by each Boot
}

func (t *supervisordTool) daemon() *daemonProc {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.d
}

func (t *supervisordTool) Name() string { return "supervisord" }

func (t *supervisordTool) Version() string {
	out, err := runCmd(10*time.Second, nil, "supervisord", "--version")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func (t *supervisordTool) Prepare(dir, run string, svcs []service) error {
	t.dir, t.conf = dir, filepath.Join(dir, "supervisord.conf")
	for _, sub := range []string{"conf.d", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	conf := fmt.Sprintf(`[unix_http_server]
file=%[1]s/s.sock

[supervisord]
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s/logs
minfds=16384
minprocs=8192
nodaemon=true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%[1]s/s.sock

[include]
files = %[1]s/conf.d/*.conf
`, dir)
	if err := os.WriteFile(t.conf, []byte(conf), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	for _, s := range svcs {
		fmt.Fprintf(&b, "[program:%s]\ncommand=%s\nautostart=true\nautorestart=true\n", s.Name, shellJoin(s.Argv))
		if !s.Crash {
			// RUNNING as soon as it is spawned, as Solo and pm2 report
			// it; the crashing service keeps the default startsecs=1, so
			// that supervisord can tell it exits too quickly.
			b.WriteString("startsecs=0\n")
		}
		fmt.Fprintf(&b, "redirect_stderr=true\nstdout_logfile=%s/logs/%s.log\nenvironment=%s=%q,%s=%q\n\n", dir, s.Name, envRun, run, envSvc, s.Name)
	}
	t.progs = b.String()
	return nil
}

func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if strings.ContainsAny(a, " '\"\\$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func (t *supervisordTool) ctl(timeout time.Duration, args ...string) ([]byte, error) {
	return runCmd(timeout, nil, "supervisorctl", append([]string{"-c", t.conf}, args...)...)
}

func (t *supervisordTool) Boot() error {
	d, err := spawn(filepath.Join(t.dir, "daemon.log"), nil, "supervisord", "-n", "-c", t.conf)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.d = d
	t.mu.Unlock()
	return poll(60*time.Second, 50*time.Millisecond, func() (bool, error) {
		if d.exited() {
			return false, errors.New("supervisord exited; see daemon.log")
		}
		out, err := t.ctl(10*time.Second, "pid")
		if err != nil {
			return false, err
		}
		_, err = strconv.Atoi(strings.TrimSpace(string(out)))
		return err == nil, err
	})
}

// PreStart stops the empty supervisord of Boot (whose RSS is the
// baseline) before the timed start.
func (t *supervisordTool) PreStart() error {
	t.d.signal(syscall.SIGTERM)
	if err := t.d.wait(time.Minute); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(t.dir, "conf.d", "services.conf"), []byte(t.progs), 0o644)
}

// Start launches supervisord with every program in its configuration,
// which is how supervisord is meant to start a set of programs (and its
// fastest way: `supervisorctl update` adds them one RPC at a time).
func (t *supervisordTool) Start() error {
	return t.Boot()
}

func (t *supervisordTool) Status() (map[string]svcStatus, error) {
	// status exits non-zero when any program is not running: read it all
	// the same.
	out, err := t.ctl(within(2*time.Minute), "status")
	m := parseSupervisorStatus(string(out))
	if len(m) == 0 && err != nil {
		return nil, err
	}
	return m, nil
}

// parseSupervisorStatus parses `supervisorctl status` lines such as
// "svc-1    RUNNING   pid 123, uptime 0:00:05".
func parseSupervisorStatus(out string) map[string]svcStatus {
	m := map[string]svcStatus{}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !isSupervisorState(f[1]) {
			continue
		}
		st := svcStatus{State: f[1], Running: f[1] == "RUNNING"}
		if len(f) >= 4 && f[2] == "pid" {
			st.PID, _ = strconv.Atoi(strings.TrimSuffix(f[3], ","))
		}
		m[f[0]] = st
	}
	return m
}

func isSupervisorState(s string) bool {
	switch s {
	case "STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED", "FATAL", "UNKNOWN":
		return true
	}
	return false
}

func (t *supervisordTool) Daemon() int { return t.daemon().pid() }

func (t *supervisordTool) Kill9() error {
	d := t.daemon()
	d.signal(syscall.SIGKILL)
	return d.wait(30 * time.Second)
}

func (t *supervisordTool) Restart() error {
	// conf.d now holds every program: supervisord starts them all.
	return t.Boot()
}

func (t *supervisordTool) Stop() error {
	d := t.daemon()
	d.signal(syscall.SIGTERM)
	return d.wait(budget)
}

func (t *supervisordTool) Close() {
	if d := t.daemon(); d != nil && !d.exited() {
		d.signal(syscall.SIGKILL)
		d.wait(10 * time.Second)
	}
}

// ---- pm2 ----

type pm2Tool struct {
	bin, dir string
	env      []string
}

func (t *pm2Tool) Name() string { return "pm2" }

// Version reads pm2's package.json: `pm2 --version` would spawn a daemon.
func (t *pm2Tool) Version() string {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(t.bin), "..", "pm2", "package.json"))
	if err != nil {
		return "?"
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &pkg) != nil || pkg.Version == "" {
		return "?"
	}
	return "pm2 " + pkg.Version
}

func (t *pm2Tool) Prepare(dir, run string, svcs []service) error {
	t.dir = dir
	t.env = []string{"PM2_HOME=" + filepath.Join(dir, "pm2")}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	type app struct {
		Name        string            `json:"name"`
		Script      string            `json:"script"`
		Args        []string          `json:"args,omitempty"`
		Interpreter string            `json:"interpreter"`
		Autorestart bool              `json:"autorestart"`
		OutFile     string            `json:"out_file"`
		ErrorFile   string            `json:"error_file"`
		Env         map[string]string `json:"env"`
	}
	var apps []app
	for _, s := range svcs {
		apps = append(apps, app{
			Name: s.Name, Script: s.Argv[0], Args: s.Argv[1:], Interpreter: "none", Autorestart: true,
			OutFile:   filepath.Join(dir, "logs", s.Name+".log"),
			ErrorFile: filepath.Join(dir, "logs", s.Name+".err.log"),
			Env:       map[string]string{envRun: run, envSvc: s.Name},
		})
	}
	b, err := json.MarshalIndent(map[string]any{"apps": apps}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "ecosystem.json"), b, 0o644)
}

func (t *pm2Tool) cli(timeout time.Duration, args ...string) ([]byte, error) {
	return runCmd(timeout, t.env, t.bin, args...)
}

func (t *pm2Tool) Boot() error {
	if _, err := t.cli(60*time.Second, "ping"); err != nil {
		return err
	}
	return poll(30*time.Second, 50*time.Millisecond, func() (bool, error) { return t.Daemon() > 0, nil })
}

func (t *pm2Tool) Start() error {
	_, err := t.cli(budget, "start", filepath.Join(t.dir, "ecosystem.json"))
	return err
}

func (t *pm2Tool) Status() (map[string]svcStatus, error) {
	out, err := t.cli(within(2*time.Minute), "jlist")
	if err != nil {
		return nil, err
	}
	return parsePM2List(out)
}

// parsePM2List parses `pm2 jlist`, skipping any banner before the JSON.
func parsePM2List(out []byte) (map[string]svcStatus, error) {
	// The JSON is the line that starts an array: "[{" or "[]"; a banner
	// such as "[PM2] Spawning PM2 daemon" may come first.
	i := -1
	for off := 0; off < len(out); {
		line := out[off:]
		if bytes.HasPrefix(line, []byte("[{")) || bytes.HasPrefix(line, []byte("[]")) {
			i = off
			break
		}
		nl := bytes.IndexByte(line, '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	if i < 0 {
		return nil, fmt.Errorf("pm2 jlist: no JSON in %q", tail(string(out), 200))
	}
	var list []struct {
		Name string `json:"name"`
		PID  int    `json:"pid"`
		PM2  struct {
			Status   string `json:"status"`
			Restarts int    `json:"restart_time"`
		} `json:"pm2_env"`
	}
	if err := json.NewDecoder(bytes.NewReader(out[i:])).Decode(&list); err != nil {
		return nil, fmt.Errorf("pm2 jlist: %w", err)
	}
	m := make(map[string]svcStatus, len(list))
	for _, a := range list {
		m[a.Name] = svcStatus{PID: a.PID, Running: a.PM2.Status == "online", State: a.PM2.Status, Restarts: a.PM2.Restarts}
	}
	return m, nil
}

func (t *pm2Tool) Daemon() int {
	b, err := os.ReadFile(filepath.Join(t.dir, "pm2", "pm2.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid > 1 && alive(pid) {
		return pid
	}
	return 0
}

func (t *pm2Tool) Kill9() error {
	pid := t.Daemon()
	if pid == 0 {
		return errors.New("pm2 daemon not found")
	}
	killPIDs([]int{pid})
	if waitGone([]int{pid}, 30*time.Second) > 0 {
		return fmt.Errorf("pm2 daemon %d survived SIGKILL", pid)
	}
	return nil
}

func (t *pm2Tool) Restart() error {
	// What a user does after the daemon died: start the ecosystem again
	// (a new daemon is spawned on the way).
	return t.Start()
}

func (t *pm2Tool) Stop() error {
	_, err := t.cli(budget, "kill")
	return err
}

func (t *pm2Tool) Close() {
	if pid := t.Daemon(); pid > 0 {
		killPIDs([]int{pid})
		waitGone([]int{pid}, 10*time.Second)
	}
}

// ---- the fork/exec floor ----

// floorTool runs bench/compare/floor: a process that only forks and execs
// the same services, on GOMAXPROCS workers, and reaps them. Its start is
// the floor every supervisor's start is measured against.
type floorTool struct {
	bin, dir string
	d        *daemonProc
}

// onlyForks marks a tool that restarts nothing: the SIGKILL + restart and
// crash-loop measures do not apply to it.
type onlyForks interface {
	onlyForks()
}

func (t *floorTool) onlyForks() {}

func (t *floorTool) Name() string    { return "floor" }
func (t *floorTool) Version() string { return "fork/exec only (bench/compare/floor)" }

func (t *floorTool) Prepare(dir, run string, svcs []service) error {
	t.dir = dir
	type svc struct {
		Name string   `json:"name"`
		Argv []string `json:"argv"`
		Env  []string `json:"env"`
	}
	list := make([]svc, len(svcs))
	for i, s := range svcs {
		list[i] = svc{Name: s.Name, Argv: s.Argv, Env: []string{envRun + "=" + run, envSvc + "=" + s.Name}}
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "services.json"), b, 0o644)
}

func (t *floorTool) Boot() error {
	ready := filepath.Join(t.dir, "ready")
	d, err := spawn(filepath.Join(t.dir, "floor.log"), nil, t.bin,
		"-services", filepath.Join(t.dir, "services.json"), "-ready", ready, "-status", filepath.Join(t.dir, "status"))
	if err != nil {
		return err
	}
	t.d = d
	return poll(60*time.Second, 10*time.Millisecond, func() (bool, error) {
		if d.exited() {
			return false, errors.New("floor exited; see floor.log")
		}
		_, err := os.Stat(ready)
		return err == nil, nil
	})
}

// Start tells the floor to fork and exec every service; it returns at
// once, as the start is timed by the children in /proc.
func (t *floorTool) Start() error {
	if t.d.exited() {
		return errors.New("floor exited; see floor.log")
	}
	return t.d.cmd.Process.Signal(syscall.SIGUSR1)
}

// Status reads the "name pid" lines the floor writes once all are started.
func (t *floorTool) Status() (map[string]svcStatus, error) {
	b, err := os.ReadFile(filepath.Join(t.dir, "status"))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]svcStatus{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]svcStatus{}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, p, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(p)
		if err != nil {
			continue
		}
		m[name] = svcStatus{PID: pid, Running: true, State: "running"}
	}
	return m, nil
}

func (t *floorTool) Daemon() int { return t.d.pid() }

func (t *floorTool) Kill9() error   { return errors.New("the floor restarts nothing") }
func (t *floorTool) Restart() error { return errors.New("the floor restarts nothing") }

func (t *floorTool) Stop() error {
	t.d.signal(syscall.SIGTERM)
	return t.d.wait(budget)
}

func (t *floorTool) Close() {
	if t.d != nil && !t.d.exited() {
		t.d.signal(syscall.SIGKILL)
		t.d.wait(10 * time.Second)
	}
}
