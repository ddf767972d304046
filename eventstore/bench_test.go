package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
)

// benchEvent is shaped like a real service_started event.
func benchEvent(i int) eventstore.Event {
	return eventstore.Event{
		Type: "service_started", Tenant: "default", Subject: fmt.Sprintf("svc-%d", i%1000), Actor: "local",
		Data: json.RawMessage(fmt.Sprintf(`{"generation":1,"attempt":%d,"pid":%d,"start_ticks":123456789,"boot_id":"74a3a01e-efb4-4124-af53-0e5840566de8"}`, i%7, 1000+i%30000)),
	}
}

// BenchmarkAppend_GroupCommit measures, in one run, durable appends of one
// event per transaction from a lone appender (the baseline), then from 64
// concurrent appenders sharing group commits, and reports both rates and
// their ratio. Goal: ratio >= 10 and >= 20,000 events/s.
func BenchmarkAppend_GroupCommit(b *testing.B) {
	const baselineEvents, appenders, perAppender = 300, 64, 100
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		s, err := eventstore.Open(filepath.Join(b.TempDir(), "solo.db"), nil)
		require.NoError(b, err)

		start := time.Now()
		for j := 0; j < baselineEvents; j++ {
			if _, err := s.Append(ctx, benchEvent(j)); err != nil {
				b.Fatal(err)
			}
		}
		baseline := float64(baselineEvents) / time.Since(start).Seconds()

		start = time.Now()
		var wg sync.WaitGroup
		for a := 0; a < appenders; a++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < perAppender; j++ {
					if _, err := s.Append(ctx, benchEvent(a*perAppender+j)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		group := float64(appenders*perAppender) / time.Since(start).Seconds()
		require.NoError(b, s.Close())

		b.ReportMetric(baseline, "baseline-events/s")
		b.ReportMetric(group, "group-events/s")
		b.ReportMetric(group/baseline, "speedup-x")
	}
}

const bigLog = 1_000_000

var (
	bigOnce sync.Once
	bigPath string
	bigErr  error
)

// bigStore builds a store of one million events once per test binary.
func bigStore(b *testing.B) string {
	bigOnce.Do(func() {
		dir, err := os.MkdirTemp("", "solo-bench-")
		if err != nil {
			bigErr = err
			return
		}
		bigPath = filepath.Join(dir, "solo.db")
		s, err := eventstore.Open(bigPath, nil)
		if err != nil {
			bigErr = err
			return
		}
		defer s.Close()
		batch := make([]eventstore.Event, 1000)
		for i := 0; i < bigLog; i += len(batch) {
			for j := range batch {
				batch[j] = benchEvent(i + j)
			}
			if _, err := s.Append(context.Background(), batch...); err != nil {
				bigErr = err
				return
			}
		}
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	// The file is shared by the benchmarks below and removed by TestMain.
	return bigPath
}

// BenchmarkReplay_1M reads and decodes a log of one million events.
// Goal: at most 2 s.
func BenchmarkReplay_1M(b *testing.B) {
	path := bigStore(b)
	s, err := eventstore.Open(path, nil)
	require.NoError(b, err)
	defer s.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		n := 0
		for _, err := range s.Read(1, 0) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != bigLog {
			b.Fatalf("read %d events, want %d", n, bigLog)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/replay")
	}
}

// BenchmarkOpen_1M opens (and closes) a store of one million events.
// Goal: at most 50 ms.
func BenchmarkOpen_1M(b *testing.B) {
	path := bigStore(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		s, err := eventstore.Open(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "ms/open")
		b.StopTimer()
		require.NoError(b, s.Close())
		b.StartTimer()
	}
}

// BenchmarkCheck_1M runs the full check (bbolt's pages, then every event
// and index) on a log of one million events: what a start after a crash
// pays to refuse a damaged file before it acts on it.
func BenchmarkCheck_1M(b *testing.B) {
	path := bigStore(b)
	s, err := eventstore.Open(path, nil)
	require.NoError(b, err)
	defer s.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := s.Check(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/check")
	}
}
