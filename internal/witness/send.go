package witness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// Send sends r to the witness at addr ([Addrs.Report]) every interval
// ([DefaultInterval] if zero), with r.Seq counting from 1 and r.At set to
// [Now] at each send, until ctx ends. A witness that is not there is no
// reason to stop: a lost datagram is ignored, and the instance goes on
// reporting, as a stale instance must. It returns an error only when addr
// cannot be resolved or no socket can be opened.
func Send(ctx context.Context, addr string, r Report, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultInterval
	}
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("witness address %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		return fmt.Errorf("report socket: %w", err)
	}
	defer conn.Close()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r.Seq++
		r.At = Now()
		b, _ := json.Marshal(r)
		conn.WriteToUDP(b, to) // best effort, by design
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
