package cluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

func key(name string) state.Key { return state.Key{Tenant: "default", Name: name} }

func TestPlan(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const margin = 500 * time.Millisecond
	live := map[string]liveNode{"n1": {lease: 1}, "n2": {lease: 2}, "n3": {lease: 3}}
	cases := []struct {
		name  string
		pl    []solo.Placement
		nodes map[string]liveNode
		stale map[staleKey]time.Time
		now   time.Time
		want  []move
		wait  time.Duration
	}{
		{
			name: "new services go to the node with the fewest, ties by name",
			pl: []solo.Placement{
				{Key: key("a"), Run: true, Node: "n1", Lease: 1},
				{Key: key("b"), Run: true},
				{Key: key("c"), Run: true},
				{Key: key("d"), Run: true},
			},
			nodes: live,
			want: []move{
				{key: key("b"), node: "n2", lease: 2, reason: "not placed"},
				{key: key("c"), node: "n3", lease: 3, reason: "not placed"},
				{key: key("d"), node: "n1", lease: 1, reason: "not placed"},
			},
		},
		{
			name: "a session's kernel on a dead node is recorded lost past the margin, never moved, even to its node back under a new lease",
			pl: []solo.Placement{
				{Key: key("session.nb"), Run: true, Node: "n9", Lease: 9, Nodes: []string{"n9"}, Session: "nb"},
				{Key: key("session.nc"), Run: true, Node: "n1", Lease: 7, Nodes: []string{"n1"}, Session: "nc"},
			},
			nodes: live,
			stale: map[staleKey]time.Time{{"n9", 9}: t0.Add(-margin), {"n1", 7}: t0.Add(-margin)},
			now:   t0,
			want: []move{
				{key: key("session.nb"), node: "n9", lease: 9, reason: "node n9 lost its lease 9", session: "nb"},
				{key: key("session.nc"), node: "n1", lease: 7, reason: "node n1 lost its lease 7", session: "nc"},
			},
		},
		{
			name:  "a session's kernel waits for the margin like any service",
			pl:    []solo.Placement{{Key: key("session.nb"), Run: true, Node: "n9", Lease: 9, Nodes: []string{"n9"}, Session: "nb"}},
			nodes: live,
			stale: map[staleKey]time.Time{{"n9", 9}: t0.Add(-100 * time.Millisecond)},
			now:   t0,
			wait:  400 * time.Millisecond,
		},
		{
			name:  "a restarted session's kernel (no longer lost) is placed on its new node",
			pl:    []solo.Placement{{Key: key("session.nb"), Run: true, Nodes: []string{"n2"}, Session: "nb"}},
			nodes: live,
			want:  []move{{key: key("session.nb"), node: "n2", lease: 2, reason: "not placed"}},
		},
		{
			name:  "a service that should not run is not placed",
			pl:    []solo.Placement{{Key: key("a")}},
			nodes: live,
		},
		{
			name:  "a dead node's service waits for the margin after the leader saw it gone",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Node: "n9", Lease: 9}},
			nodes: live,
			stale: map[staleKey]time.Time{{"n9", 9}: t0.Add(-100 * time.Millisecond)},
			now:   t0,
			wait:  400 * time.Millisecond,
		},
		{
			name:  "then it moves",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Node: "n9", Lease: 9}},
			nodes: live,
			stale: map[staleKey]time.Time{{"n9", 9}: t0.Add(-margin)},
			now:   t0,
			want:  []move{{key: key("a"), node: "n1", lease: 1, reason: "node n9 lost its lease 9"}},
		},
		{
			name:  "a live node's older lease is stale too",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Node: "n2", Lease: 7}},
			nodes: live,
			stale: map[staleKey]time.Time{{"n2", 7}: t0.Add(-time.Second)},
			now:   t0,
			want:  []move{{key: key("a"), node: "n1", lease: 1, reason: "node n2 lost its lease 7"}},
		},
		{
			name:  "a draining node's service is unplaced first, placed once it is down",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Node: "n1", Lease: 1, Running: true}, {Key: key("b"), Run: true, Running: true}, {Key: key("c"), Run: true}},
			nodes: map[string]liveNode{"n1": {lease: 1, draining: true}, "n2": {lease: 2}},
			want:  []move{{key: key("a"), reason: "node n1 drains"}, {key: key("c"), node: "n2", lease: 2, reason: "not placed"}},
		},
		{
			name: "no live node: nothing is placed",
			pl:   []solo.Placement{{Key: key("a"), Run: true}},
		},
		{
			name: "a constrained service goes to the fewest among its nodes only",
			pl: []solo.Placement{
				{Key: key("a"), Run: true, Node: "n2", Lease: 2},
				{Key: key("b"), Run: true, Nodes: []string{"n2", "n3"}},
				{Key: key("c"), Run: true, Nodes: []string{"n2"}},
			},
			nodes: live,
			want: []move{
				{key: key("b"), node: "n3", lease: 3, reason: "not placed"},
				{key: key("c"), node: "n2", lease: 2, reason: "not placed"},
			},
		},
		{
			name:  "a constrained service never goes to a draining node of its own",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Nodes: []string{"n1", "n2"}}},
			nodes: map[string]liveNode{"n1": {lease: 1, draining: true}, "n2": {lease: 2}, "n3": {lease: 3}},
			want:  []move{{key: key("a"), node: "n2", lease: 2, reason: "not placed"}},
		},
		{
			name:  "none of its nodes alive: it waits, unplaced, and says so",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Nodes: []string{"n8", "n9"}}},
			nodes: live,
			want:  []move{{key: key("a"), reason: "waiting for a node among n8, n9", waiting: []string{"n8", "n9"}}},
		},
		{
			name:  "said once: not again while its placement says so",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Nodes: []string{"n8", "n9"}, Waiting: []string{"n8", "n9"}}},
			nodes: live,
		},
		{
			name:  "said again when its nodes change",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Nodes: []string{"n9"}, Waiting: []string{"n8", "n9"}}},
			nodes: live,
			want:  []move{{key: key("a"), reason: "waiting for a node among n9", waiting: []string{"n9"}}},
		},
		{
			name:  "its only node drained: it waits once its instance is down",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Nodes: []string{"n1"}}},
			nodes: map[string]liveNode{"n1": {lease: 1, draining: true}, "n2": {lease: 2}},
			want:  []move{{key: key("a"), reason: "waiting for a node among n1", waiting: []string{"n1"}}},
		},
		{
			name:  "a waiting service is placed once one of its nodes is back",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Nodes: []string{"n3", "n9"}, Waiting: []string{"n3", "n9"}}},
			nodes: live,
			want:  []move{{key: key("a"), node: "n3", lease: 3, reason: "not placed"}},
		},
		{
			name:  "a dead node's constrained service moves only among its nodes",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Node: "n9", Lease: 9, Running: true, Nodes: []string{"n9", "n3"}}},
			nodes: live,
			stale: map[staleKey]time.Time{{"n9", 9}: t0.Add(-margin)},
			want:  []move{{key: key("a"), node: "n3", lease: 3, reason: "node n9 lost its lease 9"}},
		},
		{
			name:  "with none of them alive it stays under its dead lease, waiting",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Node: "n9", Lease: 9, Running: true, Nodes: []string{"n9"}}},
			nodes: live,
			stale: map[staleKey]time.Time{{"n9", 9}: t0.Add(-margin)},
			want:  []move{{key: key("a"), node: "n9", lease: 9, reason: "waiting for a node among n9", waiting: []string{"n9"}}},
		},
		{
			name:  "a service on a node its spec no longer allows is unplaced first",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Node: "n1", Lease: 1, Running: true, Nodes: []string{"n2", "n3"}}},
			nodes: live,
			want:  []move{{key: key("a"), reason: "node n1 is not among its nodes n2, n3"}},
		},
		{
			name:  "a service on one of its nodes stays",
			pl:    []solo.Placement{{Key: key("a"), Run: true, Node: "n3", Lease: 3, Running: true, Nodes: []string{"n2", "n3"}}},
			nodes: live,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stale := tc.stale
			if stale == nil {
				stale = map[staleKey]time.Time{}
			}
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			got, wait := plan(tc.pl, tc.nodes, stale, now, margin)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wait, wait)
		})
	}

	t.Run("the leader's first sighting starts the margin", func(t *testing.T) {
		stale := map[staleKey]time.Time{}
		pl := []solo.Placement{{Key: key("a"), Run: true, Node: "n9", Lease: 9}}
		got, wait := plan(pl, live, stale, t0, margin)
		assert.Empty(t, got)
		assert.Equal(t, margin, wait)
		assert.Equal(t, t0, stale[staleKey{"n9", 9}])
		got, _ = plan(pl, live, stale, t0.Add(margin), margin)
		assert.Len(t, got, 1)
		plan(nil, live, stale, t0, margin)
		assert.Empty(t, stale, "sightings of leases nothing is placed under are forgotten")
	})
}
