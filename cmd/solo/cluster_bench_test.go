package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/pkg/client"
	"github.com/solo-rt/solo/pkg/cluster"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/recovery"
)

var clusterKills = flag.Int("cluster.kills", 10, "node kills in BenchmarkCluster_Failover")

// BenchmarkCluster_Failover: three nodes run -cluster.services services;
// the node with the most services is SIGKILLed whole, -cluster.kills
// times (it is started again after each, and gets new services only as
// others die). Each time it measures from the kill to the moment every
// one of the dead node's services has a live process on another node,
// and reports p50, p99 and max, with the lease TTL used. No service ever
// has two live instances (the same scan as the tests').
func BenchmarkCluster_Failover(b *testing.B) {
	c := startCluster(b)
	n := *clusterServices
	w := watchInstances(c.dirs)
	for i := range n {
		mustCLI(b, c.dirs[i%3], "deploy", fmt.Sprintf("s%02d", i), "--", "sleep", "1000")
	}
	c.waitPlaced(0, n, c.names...)
	var took []time.Duration
	for k := range *clusterKills {
		via := (k + 1) % 3
		views := c.ls(via)
		count := map[string]int{}
		for _, v := range views {
			count[v.Node]++
		}
		victim := 0
		for i, name := range c.names {
			if count[name] > count[c.names[victim]] {
				victim = i
			}
		}
		if c.names[victim] == c.names[via] {
			via = (victim + 1) % 3
		}
		var moved []string
		for _, v := range views {
			if v.Node == c.names[victim] {
				moved = append(moved, v.Tenant+"/"+v.Name)
			}
		}
		var others []string
		for i, d := range c.dirs {
			if i != victim {
				others = append(others, d)
			}
		}
		start := time.Now()
		c.killNode(victim)
		waitRunningIn(b, others, moved)
		took = append(took, time.Since(start))
		c.daemons[victim] = c.spawn(victim)
		c.waitReady(victim)
		var on []string
		for i, name := range c.names {
			if i != victim {
				on = append(on, name)
			}
		}
		c.waitPlaced(via, n, append(on, c.names[victim])...)
	}
	w.finish(b)
	slices.Sort(took)
	pct := func(p float64) time.Duration { return took[min(len(took)-1, int(p*float64(len(took))))] }
	b.ReportMetric(float64(pct(0.5).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(pct(0.99).Milliseconds()), "p99-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
	b.Logf("failover of a dead node's services, %d kills, %d services, lease TTL %s: p50 %s, p99 %s, max %s",
		len(took), n, cluster.DefaultLeaseTTL, pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
}

// waitRunningIn waits until every service of keys has a live instance
// among the processes of dirs, scanning every few milliseconds, and
// returns how long that took.
func waitRunningIn(tb testing.TB, dirs []string, keys []string) time.Duration {
	start := time.Now()
	for {
		live := map[string]bool{}
		for _, dir := range dirs {
			obs, _ := recovery.Scan(dir)
			for _, o := range obs {
				if o.Leader() {
					live[o.Marker.Tenant+"/"+o.Marker.Name] = true
				}
			}
		}
		all := true
		for _, k := range keys {
			all = all && live[k]
		}
		if all {
			return time.Since(start)
		}
		if time.Since(start) > time.Minute {
			tb.Fatalf("services %v not running elsewhere after a minute", keys)
		}
		time.Sleep(2 * time.Millisecond) // the scan is the measure
	}
}

// BenchmarkCluster_Deploys: deploys per second, each until its service
// runs, 8 at a time, through a three-node cluster (etcd on loopback) and
// through one daemon on bbolt, in the same run.
func BenchmarkCluster_Deploys(b *testing.B) {
	const total, workers = 120, 8
	run := func(dir string) float64 {
		c, err := client.New(client.Options{Socket: filepath.Join(dir, "solo.sock")})
		require.NoError(b, err)
		defer c.Close()
		work := make(chan int)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for i := range work {
					_, err := c.DeployWait(context.Background(), state.Spec{Name: fmt.Sprintf("d%03d", i), Command: []string{"sleep", "1000"}}, 30*time.Second)
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
				}
			})
		}
		for i := range total {
			work <- i
		}
		close(work)
		wg.Wait()
		require.NoError(b, firstErr)
		return total / time.Since(start).Seconds()
	}
	c := startCluster(b)
	clustered := run(c.dirs[0])
	single := dataDir(b)
	startDaemon(b, single)
	alone := run(single)
	b.ReportMetric(clustered, "cluster-deploys/s")
	b.ReportMetric(alone, "bbolt-deploys/s")
	b.Logf("deploys until running, %d by %d workers: cluster (3 members, loopback) %.0f/s, one daemon on bbolt %.0f/s", total, workers, clustered, alone)
}
