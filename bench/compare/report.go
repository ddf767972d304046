package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Report is everything one harness run measured; it is written as JSON.
type Report struct {
	Started  time.Time         `json:"started"`
	Took     string            `json:"took"`
	Host     Host              `json:"host"`
	Idle     string            `json:"idle_window"`
	Budget   string            `json:"budget_per_phase"`
	Versions map[string]string `json:"versions"`
	Runs     []Run             `json:"runs"`
	Crash    []CrashRun        `json:"crash_loop"`
	Command  string            `json:"command"`
}

// Host describes the machine.
type Host struct {
	CPUs    int     `json:"cpus"`
	Kernel  string  `json:"kernel"`
	Load1   float64 `json:"load1_at_start"`
	Load1At float64 `json:"load1_at_end"`
}

// Run is one tool with N services.
type Run struct {
	Tool string `json:"tool"`
	N    int    `json:"n"`
	// OnlyForks is the fork/exec floor: it restarts nothing.
	OnlyForks bool `json:"only_forks,omitempty"`
	// DNF names the phase that did not finish within the budget ("start",
	// "status", "start command", "restart", "stop"); the tool was then
	// stopped by pid and nothing after that phase was measured.
	DNF string `json:"did_not_finish,omitempty"`
	// DNFLive is how many of its services were alive when it did not.
	DNFLive int `json:"did_not_finish_live,omitempty"`
	// RestartSkipped says why SIGKILL + restart was not run.
	RestartSkipped string `json:"restart_skipped,omitempty"`

	// Seconds from the start command until all N services were exec'd
	// children of the supervisor (in /proc), and until the tool's own
	// status said all N run; and until the start command returned.
	ProcSeconds     float64 `json:"proc_seconds"`
	StatusSeconds   float64 `json:"status_seconds"`
	StartCmdSeconds float64 `json:"start_cmd_seconds"`
	// CPU the supervising process used from the start command until all
	// N were in /proc.
	StartCPUSeconds float64 `json:"start_cpu_seconds"`

	// The supervising process: RSS (KiB) with no service and with N after
	// the idle window; marginal KiB per service; OS threads.
	RSSBaseKiB  int64   `json:"rss_base_kib"`
	RSSKiB      int64   `json:"rss_kib"`
	MarginalKiB float64 `json:"marginal_kib_per_service"`
	// The same for anonymous memory only (RssAnon): without the pages of
	// mapped files (for Solo, its event log's mmap; for all, their code).
	AnonBaseKiB     int64   `json:"anon_base_kib"`
	AnonKiB         int64   `json:"anon_kib"`
	MarginalAnonKiB float64 `json:"marginal_anon_kib_per_service"`
	ThreadsBase     int64   `json:"threads_base"`
	Threads         int64   `json:"threads"`

	// CPU the supervisor used while the N services idled, in percent of
	// one core, over IdleSeconds.
	IdleCPUPercent float64 `json:"idle_cpu_percent"`
	IdleSeconds    float64 `json:"idle_seconds"`

	// After SIGKILL of the supervisor and its restart.
	Crash          crashAccount `json:"after_sigkill"`
	RestartSeconds float64      `json:"restart_seconds"` // until the status said N run again

	// Graceful stop: seconds until every service and the supervisor were
	// gone; LeftAfterStop counts marked processes still alive then.
	StopSeconds   float64 `json:"stop_seconds"`
	LeftAfterStop int     `json:"left_after_stop"`

	Errors []string `json:"errors,omitempty"`
}

// CrashRun is what a tool does with a service that exits 1 at once.
type CrashRun struct {
	Tool       string  `json:"tool"`
	FinalState string  `json:"final_state"`
	Restarts   int     `json:"restarts"` // as the tool reports them (-1: not reported)
	GaveUpAt   float64 `json:"gave_up_seconds"`
	Timeline   string  `json:"timeline"` // states seen, in order
	Recover    string  `json:"recover,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// secs formats seconds for the table; "-" for a measure not taken.
func secs(v float64) string {
	if v <= 0 {
		return "-"
	}
	if v < 10 {
		return fmt.Sprintf("%.2f s", v)
	}
	return fmt.Sprintf("%.1f s", v)
}

// phases in the order a scenario runs them; a row measured in a phase at
// or after the one that did not finish says so.
var phaseOrder = map[string]int{"start": 0, "status": 1, "start command": 1, "restart": 2, "stop": 3}

// dnfText is the cell of a measure a tool did not finish within budget.
func dnfText(budget string) string {
	d, err := time.ParseDuration(budget)
	if err != nil {
		return "did not finish in " + budget
	}
	return fmt.Sprintf("did not finish in %g s", d.Seconds())
}

// runIndex finds runs by tool and N.
type runIndex map[string]Run

func indexRuns(runs []Run) (runIndex, []int) {
	idx := runIndex{}
	var ns []int
	for _, r := range runs {
		idx[fmt.Sprintf("%s/%d", r.Tool, r.N)] = r
		if !slices.Contains(ns, r.N) {
			ns = append(ns, r.N)
		}
	}
	return idx, ns
}

func (x runIndex) get(tool string, n int) (Run, bool) {
	r, ok := x[fmt.Sprintf("%s/%d", tool, n)]
	return r, ok
}

// floorMultiple is r's start (all N in /proc) over the floor's in the same
// run, or 0 when either is missing.
func (x runIndex) floorMultiple(r Run) float64 {
	f, ok := x.get("floor", r.N)
	if !ok || f.DNF != "" || f.ProcSeconds <= 0 || r.ProcSeconds <= 0 {
		return 0
	}
	return r.ProcSeconds / f.ProcSeconds
}

// measured reports whether the measure of a row in phase is there in r.
func measured(r Run, phase string) bool {
	return r.DNF == "" || phaseOrder[r.DNF] > phaseOrder[phase]
}

// writeTable prints one markdown table per N, tools as columns, the cost
// per service against N, then the crash-loop table.
func writeTable(w io.Writer, rep Report, tools []string) {
	byKey, ns := indexRuns(rep.Runs)
	dnf := dnfText(rep.Budget)
	type row struct {
		name  string
		phase string
		cell  func(Run) string
	}
	rows := []row{
		{"start: all N in /proc", "start", func(r Run) string { return secs(r.ProcSeconds) }},
		{"start, as a multiple of the floor", "start", func(r Run) string {
			if m := byKey.floorMultiple(r); m > 0 {
				return fmt.Sprintf("%.2fx", m)
			}
			return "n/a"
		}},
		{"start: status says all N running", "status", func(r Run) string { return secs(r.StatusSeconds) }},
		{"supervisor CPU used to start N", "start", func(r Run) string { return secs(r.StartCPUSeconds) }},
		{"marginal RSS per service", "status", func(r Run) string {
			return fmt.Sprintf("%.1f KiB", r.MarginalKiB)
		}},
		{"  of which anonymous (RssAnon)", "status", func(r Run) string {
			return fmt.Sprintf("%.1f KiB", r.MarginalAnonKiB)
		}},
		{"supervisor OS threads (empty -> N)", "status", func(r Run) string { return fmt.Sprintf("%d -> %d", r.ThreadsBase, r.Threads) }},
		{"idle CPU (% of a core)", "status", func(r Run) string { return fmt.Sprintf("%.3f%%", r.IdleCPUPercent) }},
		{"SIGKILL + restart: orphans / duplicates", "restart", func(r Run) string {
			switch {
			case r.OnlyForks:
				return "n/a"
			case r.RestartSkipped != "":
				return r.RestartSkipped
			}
			return fmt.Sprintf("%d / %d", r.Crash.Orphans, r.Crash.Duplicates)
		}},
		{"graceful stop of N", "stop", func(r Run) string { return secs(r.StopSeconds) }},
	}
	header := func() {
		fmt.Fprintf(w, "| measure |")
		for _, t := range tools {
			fmt.Fprintf(w, " %s |", t)
		}
		fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(tools)))
	}
	for _, n := range ns {
		fmt.Fprintf(w, "\nN = %d (idle window %s)\n\n", n, rep.Idle)
		header()
		for _, rw := range rows {
			fmt.Fprintf(w, "| %s |", rw.name)
			for _, t := range tools {
				r, ok := byKey.get(t, n)
				switch {
				case !ok:
					fmt.Fprint(w, " n/a |")
				case !measured(r, rw.phase):
					fmt.Fprintf(w, " %s |", dnf)
				case len(r.Errors) > 0 && rw.name == rows[0].name:
					fmt.Fprintf(w, " %s (error) |", rw.cell(r))
				default:
					fmt.Fprintf(w, " %s |", rw.cell(r))
				}
			}
			fmt.Fprintln(w)
		}
	}
	if len(ns) >= 2 {
		writePerService(w, byKey, ns, tools, dnf)
		lo, hi := ns[0], ns[len(ns)-1]
		fmt.Fprintf(w, "\nBetween N = %d and N = %d, or the largest N a tool finished (the slope: fixed costs cancel out)\n\n", lo, hi)
		header()
		for _, m := range []struct {
			name string
			kib  func(Run) int64
		}{
			{"marginal RSS per service", func(r Run) int64 { return r.RSSKiB }},
			{"  of which anonymous (RssAnon)", func(r Run) int64 { return r.AnonKiB }},
		} {
			fmt.Fprintf(w, "| %s |", m.name)
			for _, t := range tools {
				var done []Run
				for _, n := range ns {
					if r, ok := byKey.get(t, n); ok && measured(r, "status") && m.kib(r) > 0 {
						done = append(done, r)
					}
				}
				if len(done) < 2 {
					fmt.Fprint(w, " n/a |")
					continue
				}
				a, b := done[0], done[len(done)-1]
				fmt.Fprintf(w, " %.1f KiB", float64(m.kib(b)-m.kib(a))/float64(b.N-a.N))
				if a.N != lo || b.N != hi {
					fmt.Fprintf(w, " (N = %d to %d)", a.N, b.N)
				}
				fmt.Fprint(w, " |")
			}
			fmt.Fprintln(w)
		}
	}
	if len(rep.Crash) > 0 {
		fmt.Fprintf(w, "\nA service that exits 1 at once (restart always, each tool's defaults)\n\n")
		fmt.Fprintln(w, "| tool | outcome |")
		fmt.Fprintln(w, "|---|---|")
		for _, t := range tools {
			for _, c := range rep.Crash {
				if c.Tool == t {
					fmt.Fprintf(w, "| %s | %s |\n", c.Tool, crashOutcome(c))
				}
			}
			if t == "floor" {
				fmt.Fprintln(w, "| floor | n/a (restarts nothing) |")
			}
		}
	}
	for _, r := range rep.Runs {
		if r.DNF != "" {
			fmt.Fprintf(w, "\n%s N=%d: %s did not finish within the budget of %s a phase (%d of %d services alive then); it was stopped by pid, and nothing after it was measured.", r.Tool, r.N, r.DNF, rep.Budget, r.DNFLive, r.N)
		}
	}
	for _, r := range rep.Runs {
		for _, e := range r.Errors {
			fmt.Fprintf(w, "\nerror: %s N=%d: %s", r.Tool, r.N, e)
		}
	}
	fmt.Fprintln(w)
}

// writePerService prints the start time and the memory each service costs
// at each N, tools as rows: flat lines are the goal.
func writePerService(w io.Writer, byKey runIndex, ns []int, tools []string, dnf string) {
	table := func(title, phase string, cell func(Run) string) {
		fmt.Fprintf(w, "\n%s\n\n| tool |", title)
		for _, n := range ns {
			fmt.Fprintf(w, " N = %d |", n)
		}
		fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(ns)))
		for _, t := range tools {
			fmt.Fprintf(w, "| %s |", t)
			for _, n := range ns {
				r, ok := byKey.get(t, n)
				switch {
				case !ok:
					fmt.Fprint(w, " n/a |")
				case !measured(r, phase):
					fmt.Fprintf(w, " %s |", dnf)
				default:
					fmt.Fprintf(w, " %s |", cell(r))
				}
			}
			fmt.Fprintln(w)
		}
	}
	table("Start per service (all N in /proc, over N; flat from one N to the next is the goal)", "start", func(r Run) string {
		if r.ProcSeconds <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f ms", 1000*r.ProcSeconds/float64(r.N))
	})
	table("Memory per service (marginal RSS after the idle window)", "status", func(r Run) string {
		return fmt.Sprintf("%.1f KiB", r.MarginalKiB)
	})
}

func crashOutcome(c CrashRun) string {
	if c.Error != "" {
		return "error: " + c.Error
	}
	s := c.FinalState
	if c.Restarts >= 0 {
		s += fmt.Sprintf(" after %d restarts", c.Restarts)
	}
	if c.GaveUpAt > 0 {
		s += fmt.Sprintf(", gave up at %.1f s", c.GaveUpAt)
	} else {
		s += ", still restarting at the end of the window"
	}
	if c.Recover != "" {
		s += "; " + c.Recover
	}
	return s
}
