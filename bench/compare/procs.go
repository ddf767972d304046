package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The environment variables that mark every service the harness starts,
// through whichever tool: the run they belong to, and the service's name.
// They let the harness find its services in /proc after a tool lost track
// of them, and tell them from anyone else's processes.
const (
	envRun = "BENCH_RUN"
	envSvc = "BENCH_SVC"
)

// procStat is what the harness reads from /proc/PID/stat.
type procStat struct {
	PID, PPID int
	Comm      string
	State     byte
}

// parseStat parses one /proc/PID/stat line; comm may hold spaces and
// parentheses, so the fields are taken after the last ')'.
func parseStat(b []byte) (procStat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, errors.New("stat: no comm")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("stat: pid: %w", err)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 2 {
		return procStat{}, errors.New("stat: short")
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("stat: ppid: %w", err)
	}
	return procStat{PID: pid, PPID: ppid, Comm: string(b[open+1 : end]), State: f[0][0]}, nil
}

// pids lists the numeric entries of /proc.
func pids() []int {
	ents, _ := os.ReadDir("/proc")
	out := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	st, err := parseStat(b)
	return st, err == nil
}

// childCounter counts the children of a process that have exec'd a given
// program, cheaply enough to poll: it reads the kernel's list of children
// (/proc/PID/task/TID/children) and the comm of children not seen before,
// instead of every process's stat.
type childCounter struct {
	parent func() int // the supervisor's pid, which a start may change
	comm   string
	seen   map[int]bool // children already seen running comm
}

func newChildCounter(parent func() int, comm string) *childCounter {
	return &childCounter{parent: parent, comm: comm, seen: map[int]bool{}}
}

// count returns how many current children run comm.
func (c *childCounter) count() int {
	parent := c.parent()
	if parent <= 0 {
		return 0
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", parent))
	n := 0
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", parent, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if !c.seen[pid] {
				comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				if err != nil || strings.TrimSpace(string(comm)) != c.comm {
					continue
				}
				c.seen[pid] = true
			}
			n++
		}
	}
	return n
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.State != 'Z'
}

// marked is one live process of a run: its pid and the service it is.
type marked struct {
	PID     int
	Service string
}

// environValue returns the value of key in a NUL-separated environ block.
func environValue(environ []byte, key string) (string, bool) {
	prefix := []byte(key + "=")
	for kv := range bytes.SplitSeq(environ, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, prefix); ok {
			return string(v), true
		}
	}
	return "", false
}

// markedProcs lists the live processes marked with run id.
func markedProcs(run string) []marked {
	var out []marked
	for _, pid := range pids() {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if err != nil || len(b) == 0 {
			continue
		}
		if v, ok := environValue(b, envRun); !ok || v != run {
			continue
		}
		if !alive(pid) {
			continue
		}
		svc, _ := environValue(b, envSvc)
		out = append(out, marked{PID: pid, Service: svc})
	}
	return out
}

// crashAccount is what is left after a supervisor was SIGKILLed and
// started again.
type crashAccount struct {
	Live       int `json:"live"`       // marked processes alive
	Managed    int `json:"managed"`    // of which the tool reports as its services
	Orphans    int `json:"orphans"`    // alive, marked, and not reported by the tool
	Duplicates int `json:"duplicates"` // instances beyond the first, per service
	Missing    int `json:"missing"`    // services with no live instance
}

// account compares the live marked processes with the pids the tool
// reports (service name -> pid) for want services. It is pure, so that it
// can be tested without processes.
func account(live []marked, reported map[string]int, want []string) crashAccount {
	rep := map[int]bool{}
	for _, pid := range reported {
		if pid > 0 {
			rep[pid] = true
		}
	}
	per := map[string]int{}
	var a crashAccount
	for _, m := range live {
		a.Live++
		per[m.Service]++
		if rep[m.PID] {
			a.Managed++
		} else {
			a.Orphans++
		}
	}
	for _, n := range per {
		if n > 1 {
			a.Duplicates += n - 1
		}
	}
	for _, s := range want {
		if per[s] == 0 {
			a.Missing++
		}
	}
	return a
}

// procStatus reads a "Key: value" field of /proc/PID/status as an integer
// (kB for memory fields).
func procStatus(pid int, key string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}

// cpuTime is the CPU time pid has used, summed over its threads from
// schedstat (nanoseconds, unlike the 10 ms ticks of stat).
func cpuTime(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // a thread that just ended
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err == nil {
			total += time.Duration(ns)
		}
	}
	return total, nil
}

// killPIDs SIGKILLs each pid, by pid; never by name.
func killPIDs(pids []int) {
	for _, pid := range pids {
		if pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// waitGone waits until none of pids is alive, or timeout; it returns how
// many are left.
func waitGone(pids []int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		left := 0
		for _, pid := range pids {
			if alive(pid) {
				left++
			}
		}
		if left == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sortedNames(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
