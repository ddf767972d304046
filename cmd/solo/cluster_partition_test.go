package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/internal/witness"
	"github.com/solo-rt/solo/recovery"
)

// TestCluster_PartitionHeal: three nodes whose etcd members talk through
// proxies, services that report to a witness (its own process). A node
// that runs services and does not lead placement is cut off from the
// others: it cannot renew its lease, fences itself (its services stop,
// said in its log and metrics), and only then do its services run on the
// two others. The partition heals, the node rejoins (alive again) and
// starts nothing stale. The witness saw no service alive twice at one
// instant, no fence go back, and every service ends running exactly once,
// where the cluster places it.
func TestCluster_PartitionHeal(t *testing.T) {
	addrs, w := startWitness(t)
	c := startProxiedCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	n := *clusterServices
	var services []string
	for i := range n {
		name := fmt.Sprintf("s%02d", i)
		services = append(services, "default/"+name)
		mustCLI(t, c.dirs[i%3], "deploy", name, "--", soloBin, "_report", "--witness", addrs.Report)
	}
	before := c.waitPlaced(0, n, c.names...)
	_, err := w.Wait(ctx, func(st witness.State) bool { return st.RunningOnce(services...) == nil })
	require.NoError(t, err, "every service reports")

	victim := -1
	for i, nd := range c.nodes(0) {
		if !nd.Leader && nd.Services > 0 {
			victim = i
			break
		}
	}
	require.NotEqual(t, -1, victim, "fewest services first puts some on every node: %+v", before)
	cut := c.names[victim]
	via := (victim + 1) % 3
	var survivors []string
	for _, name := range c.names {
		if name != cut {
			survivors = append(survivors, name)
		}
	}
	var stale []int
	for _, v := range before {
		if v.Node == cut {
			stale = append(stale, v.PID)
		}
	}
	require.NotEmpty(t, stale)

	c.peers.Isolate(victim)
	// Fenced: the cut node's services stop (its daemon's fence or its
	// keeper's, whichever deadline comes first), and the daemon says so.
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range stale {
		for alive(pid) {
			require.True(t, time.Now().Before(deadline), "pid %d still runs on the cut node %s", pid, cut)
			time.Sleep(20 * time.Millisecond) // waits on the pid, a fact
		}
	}
	for !strings.Contains(c.daemons[victim].logs.String(), "fenced: the lease could not be renewed in time") {
		require.True(t, time.Now().Before(deadline), "the cut node %s did not fence itself", cut)
		time.Sleep(20 * time.Millisecond) // waits on the node's log, a fact
	}
	assert.Equal(t, "1", metric(t, c.dirs[victim], "solo_cluster_fenced"))
	// From now on a report from the cut node's old instances is a breach.
	_, err = w.MarkDead(ctx, witness.Dead{Node: cut})
	require.NoError(t, err)
	// Its services run elsewhere: once each, reporting from a survivor.
	_, err = w.Wait(ctx, func(st witness.State) bool {
		if st.RunningOnce(services...) != nil {
			return false
		}
		for _, s := range services {
			if st.Services[s].Live[0].Node == cut {
				return false
			}
		}
		return true
	})
	require.NoError(t, err, "the cut node's services run on the others")
	moved := c.waitPlaced(via, n, survivors...)

	c.peers.Heal(victim)
	deadline = time.Now().Add(60 * time.Second)
	for !nodeAlive(c, via, cut) || metric(t, c.dirs[victim], "solo_cluster_fenced") != "0" {
		require.True(t, time.Now().Before(deadline), "the healed node %s did not rejoin", cut)
		time.Sleep(50 * time.Millisecond) // polls the cluster's own report
	}
	// The rejoined node sees the cluster as the others do, and runs
	// nothing but what is placed on it.
	after := c.waitPlaced(victim, n, c.names...)
	obs, err := recovery.Scan(c.dirs[victim])
	require.NoError(t, err)
	for _, o := range obs {
		if o.Leader() {
			v := after[o.Marker.Name]
			assert.True(t, v.Node == cut && v.PID == o.Identity.PID, "%s pid %d runs on the rejoined node %s, placed on %s pid %d",
				o.Marker.Name, o.Identity.PID, cut, v.Node, v.PID)
		}
	}
	// Wait one liveness window past now, so that any instance started
	// before now has reported or is not live.
	st, err := w.State(ctx)
	require.NoError(t, err)
	since := st.Now
	st, err = w.Wait(ctx, func(s witness.State) bool { return s.Now-since > int64(s.Window) })
	require.NoError(t, err)

	assert.Empty(t, st.Violations(), "never twice at once, fences only up, nothing from the dead")
	require.NoError(t, st.RunningOnce(services...))
	for name, b := range before {
		a, m := after[name], moved[name]
		live := st.Services["default/"+name].Live[0]
		assert.Equal(t, [3]any{a.Node, a.PID, int64(a.Fence)}, [3]any{live.Node, live.PID, live.Fence},
			"%s reports from where the cluster places it", name)
		if b.Node == cut {
			assert.Greater(t, m.Fence, b.Fence, "%s moved under a newer fence", name)
		} else {
			assert.Equal(t, b.PID, m.PID, "%s, not on the cut node, was not restarted", name)
		}
	}
}

// nodeAlive reports whether node via lists node name as alive.
func nodeAlive(c *testCluster, via int, name string) bool {
	for _, nd := range c.nodes(via) {
		if nd.Name == name {
			return nd.Alive
		}
	}
	return false
}
