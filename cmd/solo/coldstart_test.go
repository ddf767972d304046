package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/recovery"
	"github.com/solo-rt/solo/supervisor"
)

// BenchmarkColdStart measures issue 5's cold start: the daemon is SIGKILLed
// while n services run, over a log of a million events, and a new `solo
// daemon` is exec'd; the time is from the exec to /readyz answering 200
// over the unix socket. Every service must be re-adopted: 0 restarts, 0
// duplicates (checked from the recovery log line and a scan of /proc).
//
// Goal: at most 1 s for 1,000 services, and for 10,000 (issue 18). The 100
// case shows how it grows.
//
//	go test -run '^$' -bench ColdStart -benchtime 5x -timeout 60m ./cmd/solo/
//	go test -run '^$' -bench 'ColdStart/services=10000' -benchtime 3x -timeout 60m ./cmd/solo/
//
// The daemon holds one open file per service (its pidfd): a case whose
// services do not fit under the hard limit of open files is skipped,
// saying so (raise it with `ulimit -Hn`).
//
// COLDSTART_EVENTS changes the filler (default 1,000,000 events).
func BenchmarkColdStart(b *testing.B) {
	events := 1_000_000
	if n, err := strconv.Atoi(os.Getenv("COLDSTART_EVENTS")); err == nil && n >= 0 {
		events = n
	}
	filler := ""
	if events > 0 {
		filler = fillerDB(b, events)
	}
	for _, n := range []int{100, 1000, 10_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) { benchColdStart(b, n, filler) })
	}
}

// fillerDB returns a database of events filler events (about no service of
// ours) and a snapshot at its head, written once and copied by each
// benchmark.
func fillerDB(b *testing.B, events int) string {
	dir, err := os.MkdirTemp("", "solo-filler-")
	require.NoError(b, err)
	b.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "solo.db")
	start := time.Now()
	require.NoError(b, writeFiller(path, events))
	b.Logf("wrote %d filler events in %v", events, time.Since(start).Round(time.Millisecond))
	return path
}

// writeFiller appends events drift_found events of another tenant, 1,000
// per commit. The fold passes over them; only a start that read the whole
// log would pay for them.
func writeFiller(path string, events int) error {
	s, err := eventstore.Open(path, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	const batch = 1000
	buf := make([]eventstore.Event, 0, batch)
	for i := 0; i < events; i += batch {
		buf = buf[:0]
		for j := i; j < min(i+batch, events); j++ {
			ev, err := state.NewEvent("filler", "f"+strconv.Itoa(j%1000), state.DriftFound{Kind: state.DriftStranger, Detail: "filler"})
			if err != nil {
				return err
			}
			buf = append(buf, ev)
		}
		if _, err := s.Append(context.Background(), buf...); err != nil {
			return err
		}
	}
	// The snapshot a running daemon would have taken: without it the first
	// start would fold the whole filler.
	w, err := state.Fold(nil, s.Read(1, 0))
	if err != nil {
		return err
	}
	data, err := w.MarshalSnapshot()
	if err != nil {
		return err
	}
	return s.SaveSnapshot(w.Pos(), data)
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var recoveryLine = regexp.MustCompile(`recovery done: readopted=(\d+) restarted=(\d+) failed=(\d+) strays_stopped=(\d+) took=(\S+)`)

func benchColdStart(b *testing.B, n int, filler string) {
	if _, hard := supervisor.FileLimit(); hard < uint64(n*supervisor.FilesPerService+2048) {
		b.Skipf("%d services need about %d open files in the daemon; the hard limit is %d: raise it (ulimit -Hn)", n, n*supervisor.FilesPerService+2048, hard)
	}
	dir := dataDir(b)
	home := mustAbs(b, dir)
	b.Cleanup(func() { killMarked(dir) })
	if filler != "" {
		require.NoError(b, copyFile(filepath.Join(dir, "solo.db"), filler))
	}

	// Deploy n services, 16 callers at once.
	d := startDaemon(b, dir, "--log-level", "info")
	c, err := client.New(client.Options{Socket: filepath.Join(dir, "solo.sock"), Timeout: time.Minute})
	require.NoError(b, err)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := c.Deploy(context.Background(), state.Spec{Name: fmt.Sprintf("svc%05d", i), Command: []string{"sleep", "100000"}})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(b, err)
	}
	require.Eventually(b, func() bool {
		views, err := c.List(context.Background(), "")
		require.NoError(b, err)
		running := 0
		for _, v := range views {
			if v.State == state.StateRunning {
				running++
			}
		}
		return running == n
	}, 20*time.Minute, 200*time.Millisecond) // 10,000 starts on a loaded machine
	c.Close()
	b.Logf("%d services deployed and running in %v", n, time.Since(start).Round(time.Millisecond))

	httpc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", filepath.Join(dir, "solo.sock"))
		},
		DisableKeepAlives: true,
	}}
	var total, recov time.Duration
	runs := 0
	for b.Loop() { // b.Loop runs the setup above once, not once per b.N
		runs++
		b.StopTimer()
		d.kill()
		before := leadersByName(b, home)
		require.Len(b, before, n, "a service died with the daemon")
		b.StartTimer()

		t0 := time.Now()
		d2, err := spawnDaemon(dir, "--log-level", "info")
		require.NoError(b, err)
		waitReady(b, httpc, d2)
		took := time.Since(t0)

		b.StopTimer()
		d2.t = b
		b.Cleanup(d2.kill)
		<-d2.ready() // the log line follows the recovery line
		m := recoveryLine.FindStringSubmatch(d2.logs.String())
		require.NotNil(b, m, "no recovery line:\n%s", d2.logs)
		require.Equal(b, []string{strconv.Itoa(n), "0", "0", "0"}, m[1:5], "not every service was re-adopted: %s", m[0])
		after := leadersByName(b, home)
		require.Equal(b, before, after, "a pid changed, or a duplicate runs")
		rt, _ := time.ParseDuration(m[5])
		total, recov = total+took, recov+rt
		d = d2
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(runs), "ms/ready")
	b.ReportMetric(float64(recov.Microseconds())/1000/float64(runs), "ms/recovery")
	b.ReportMetric(0, "ns/op")
	d.kill()
}

// waitReady polls /readyz over the socket until it answers 200: the poll
// is the measurement.
func waitReady(b *testing.B, c *http.Client, d *daemon) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			b.Fatalf("daemon exited with %d:\n%s", d.code, d.logs)
		default:
		}
		resp, err := c.Get("http://solo/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("not ready after 2 minutes:\n%s", d.logs)
}

// leadersByName returns, for each service, the pid of its one live
// instance; a duplicate fails the benchmark.
func leadersByName(b *testing.B, home string) map[string]int {
	live, err := recovery.Scan(home)
	require.NoError(b, err)
	out := map[string]int{}
	for _, o := range live {
		if !o.Leader() {
			continue
		}
		if pid, dup := out[o.Marker.Name]; dup {
			b.Fatalf("duplicate: %s runs as %d and %d", o.Marker.Name, pid, o.Identity.PID)
		}
		out[o.Marker.Name] = o.Identity.PID
	}
	return out
}
