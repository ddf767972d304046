package etcdstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/eventstore/etcdstore"
	"github.com/solo-rt/solo/eventstore/etcdstore/etcdtest"
)

// replayEvents is the size of the log BenchmarkReplay reads. Building a
// log of a million events in etcd takes minutes, so the default is a
// tenth of that; -replay.events=1000000 measures the real figure.
var replayEvents = flag.Int("replay.events", 100_000, "events in the log BenchmarkReplay reads")

// benchEvent is shaped like a real service_started event (as in the bbolt
// store's benchmarks).
func benchEvent(i int) eventstore.Event {
	return eventstore.Event{
		Type: "service_started", Tenant: "default", Subject: fmt.Sprintf("svc-%d", i%1000), Actor: "local",
		Data: json.RawMessage(fmt.Sprintf(`{"generation":1,"attempt":%d,"pid":%d,"start_ticks":123456789,"boot_id":"74a3a01e-efb4-4124-af53-0e5840566de8"}`, i%7, 1000+i%30000)),
	}
}

// BenchmarkAppend measures durable appends, in one run, on bbolt and on
// etcd with one and with three members (loopback, fsync on), three ways:
// one event per call from a lone appender (single), one event per call
// from 64 concurrent appenders sharing group commits (group), and calls
// of 100 events from a lone appender (batch). Each reports events/s.
func BenchmarkAppend(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) eventstore.Log
	}{
		{"bbolt", func(b *testing.B) eventstore.Log {
			s, err := eventstore.Open(filepath.Join(b.TempDir(), "solo.db"), nil)
			require.NoError(b, err)
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"etcd-1", etcdBench(1)},
		{"etcd-3", etcdBench(3)},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s := be.open(b)
				single, group, batch := appendRates(b, s)
				b.ReportMetric(single, "single-events/s")
				b.ReportMetric(group, "group-events/s")
				b.ReportMetric(batch, "batch-events/s")
			}
		})
	}
}

// etcdBench opens a store on a new cluster of n durable members.
func etcdBench(n int) func(b *testing.B) eventstore.Log {
	return func(b *testing.B) eventstore.Log {
		c := etcdtest.Start(b, n, etcdtest.Options{})
		return open(b, c.Client(b), etcdstore.Options{Prefix: "/bench/"})
	}
}

func appendRates(b *testing.B, s eventstore.Log) (single, group, batch float64) {
	const singles, appenders, perAppender, batches, batchSize = 300, 64, 100, 50, 100
	ctx := context.Background()
	start := time.Now()
	for j := 0; j < singles; j++ {
		if _, err := s.Append(ctx, benchEvent(j)); err != nil {
			b.Fatal(err)
		}
	}
	single = singles / time.Since(start).Seconds()

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
	group = appenders * perAppender / time.Since(start).Seconds()

	evs := make([]eventstore.Event, batchSize)
	start = time.Now()
	for j := 0; j < batches; j++ {
		for k := range evs {
			evs[k] = benchEvent(j*batchSize + k)
		}
		if _, err := s.Append(ctx, evs...); err != nil {
			b.Fatal(err)
		}
	}
	batch = batches * batchSize / time.Since(start).Seconds()
	return single, group, batch
}

// BenchmarkReplay reads and decodes the whole log from one etcd member
// (the fold at start-up reads it so), -replay.events events of it.
// The log is built first, outside the timing.
func BenchmarkReplay(b *testing.B) {
	n := *replayEvents
	c := etcdtest.Start(b, 1, etcdtest.Options{NoFsync: true})
	// Building a big log on a loaded machine: a Txn of 1,024 events may
	// take longer than the default request timeout.
	s := open(b, c.Client(b), etcdstore.Options{Prefix: "/replay/", RequestTimeout: 5 * time.Minute})
	batch := make([]eventstore.Event, 256)
	ctx := context.Background()
	for i := 0; i < n; i += len(batch) {
		batch = batch[:min(len(batch), n-i)]
		for j := range batch {
			batch[j] = benchEvent(i + j)
			batch[j].ID = s.NewID()
		}
		for { // an unknown outcome is retried with the same ids
			_, err := s.Append(ctx, batch...)
			if err == nil {
				break
			}
			if !errors.Is(err, eventstore.ErrUnavailable) {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		got := 0
		for _, err := range s.Read(1, 0) {
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != n {
			b.Fatalf("read %d events, want %d", got, n)
		}
		b.ReportMetric(float64(got)/time.Since(start).Seconds(), "events/s")
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/replay")
	}
}
