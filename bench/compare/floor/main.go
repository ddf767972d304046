// Command floor is the fork/exec floor of bench/compare: a process that
// does nothing but fork and exec the services it is given, as fast as the
// machine allows, and reap them. No log files, no state, no restarts: what
// any supervisor must at least pay to start the same services.
//
// It reads the services (JSON: name, argv, extra environment) at boot,
// writes READY, and waits. On SIGUSR1 it forks and execs them all on
// GOMAXPROCS workers, then writes STATUS ("name pid" lines). On SIGTERM or
// SIGINT it sends SIGTERM to every child, reaps them, and exits.
//
//	floor -services services.json -ready ready -status status
//
// The harness builds it (go build ./bench/compare/floor) and runs it as its
// own process, so that its RSS, threads and CPU are measured as a
// supervisor's are, apart from the harness's work.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

type service struct {
	Name string   `json:"name"`
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
}

func main() {
	var (
		svcPath    = flag.String("services", "", "JSON file of the services")
		readyPath  = flag.String("ready", "", "file written once the services are read")
		statusPath = flag.String("status", "", "file of \"name pid\" lines written once all are started")
	)
	flag.Parse()
	if *svcPath == "" || *readyPath == "" || *statusPath == "" {
		fmt.Fprintln(os.Stderr, "floor: -services, -ready and -status are required")
		os.Exit(2)
	}
	if err := run(*svcPath, *readyPath, *statusPath); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(svcPath, readyPath, statusPath string) error {
	b, err := os.ReadFile(svcPath)
	if err != nil {
		return err
	}
	var svcs []service
	if err := json.Unmarshal(b, &svcs); err != nil {
		return fmt.Errorf("%s: %w", svcPath, err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	// Only its number is used below: keep the file, or its finalizer
	// closes the descriptor under the forks (EBADF).
	defer runtime.KeepAlive(devnull)
	base := os.Environ()
	attrs := make([]*syscall.ProcAttr, len(svcs))
	for i, s := range svcs {
		if len(s.Argv) == 0 {
			return fmt.Errorf("%s: service %q has no argv", svcPath, s.Name)
		}
		fd := devnull.Fd()
		attrs[i] = &syscall.ProcAttr{
			Env:   append(append([]string(nil), base...), s.Env...),
			Files: []uintptr{fd, fd, fd},
		}
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	if err := writeFile(readyPath, "ready\n"); err != nil {
		return err
	}
	pids := make([]int, len(svcs))
	started := false
	for sig := range sigs {
		if sig != syscall.SIGUSR1 {
			break
		}
		if started {
			continue
		}
		started = true
		if err := startAll(svcs, attrs, pids); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
		}
		var st strings.Builder
		for i, s := range svcs {
			if pids[i] > 0 {
				fmt.Fprintf(&st, "%s %d\n", s.Name, pids[i])
			}
		}
		if err := writeFile(statusPath, st.String()); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
		}
	}
	stopAll(pids)
	return nil
}

// startAll forks and execs every service on GOMAXPROCS workers.
func startAll(svcs []service, attrs []*syscall.ProcAttr, pids []int) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(svcs) {
					return
				}
				pid, err := syscall.ForkExec(svcs[i].Argv[0], svcs[i].Argv, attrs[i])
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("start %s: %w", svcs[i].Name, err)
					}
					mu.Unlock()
					continue
				}
				pids[i] = pid
			}
		})
	}
	wg.Wait()
	return firstErr
}

// stopAll sends SIGTERM to every child and reaps them all.
func stopAll(pids []int) {
	for _, pid := range pids {
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	for _, pid := range pids {
		if pid > 0 {
			var ws syscall.WaitStatus
			for {
				_, err := syscall.Wait4(pid, &ws, 0, nil)
				if err != syscall.EINTR {
					break
				}
			}
		}
	}
}

// writeFile writes path whole, through a rename, so that a reader never
// sees half of it.
func writeFile(path, s string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
