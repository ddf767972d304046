package wire

import "time"

// Node is one node of a cluster as `solo nodes --json` and GET /v1/nodes
// report it.
type Node struct {
	Name string `json:"name"`
	// Address is the node's API address, as its daemon advertises it
	// (empty when it serves no TCP listener).
	Address string `json:"address"`
	// Alive: the node holds a lease (its presence key exists). A node that
	// has services placed on it but no lease is listed with Alive false.
	Alive bool `json:"alive"`
	// LeaseRemaining is how long its lease has left unless renewed, in
	// whole seconds as etcd counts it; 0 when not alive.
	LeaseRemaining time.Duration `json:"lease_remaining"`
	// Services is how many services that should run are placed on it.
	Services int `json:"services"`
	// Started is when the node's daemon joined the cluster.
	Started time.Time `json:"started,omitzero"`
	// Leader: the node places services (the elected placement leader).
	Leader bool `json:"leader,omitempty"`
	// Draining: `solo drain` moves its services away and keeps new ones off.
	Draining bool `json:"draining,omitempty"`
}

// NodesReply is the body of GET /v1/nodes.
type NodesReply struct {
	Nodes []Node `json:"nodes"`
}

// DrainReply is the body of POST and DELETE /v1/nodes/{name}/drain.
type DrainReply struct {
	Node     string `json:"node"`
	Draining bool   `json:"draining"`
}
