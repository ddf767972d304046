// Package tcpproxy is a TCP proxy that a test can cut and heal, to
// partition the members of a cluster without touching the machine's
// network: each member advertises its proxy's address, and every byte
// between members then passes through a [Proxy].
//
// # Usage
//
//	p, err := tcpproxy.New("127.0.0.1:0", memberPeerAddr, &tcpproxy.Options{Sender: etcdtest.RaftSender})
//	// advertise "http://"+p.Addr() as the member's peer URL
//	p.Cut()                        // every connection dropped, new ones refused
//	p.Heal()                       // new ones forwarded again
//	p.CutFrom("8e9e05c52164694d")  // only the connections that sender opened
//	p.HealFrom("8e9e05c52164694d")
//
// A cut drops connections with a reset (SO_LINGER 0), as a lost peer looks
// once its host answers again, and refuses new ones by accepting and
// resetting them: the port stays the proxy's, so that no other program can
// take it while the partition lasts.
//
// # Concurrency
//
// A [Proxy] is safe for concurrent use; each connection is copied by two
// goroutines, which end when it is dropped or closed.
//
// # Caveats
//
//   - A connection is named by [Options.Sender] once, from its first bytes:
//     a protocol that multiplexes several senders on one connection cannot
//     be cut by sender.
//   - Bytes already in the kernel's buffers when a cut comes may still be
//     delivered, as on a real network.
package tcpproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// IdentifyTimeout bounds how long a new connection may take to send the
// bytes [Options.Sender] needs; a connection that has not is unnamed.
const IdentifyTimeout = 5 * time.Second

// Options configure [New]. The zero value forwards every connection and
// names none.
type Options struct {
	// Sender names who opened a connection from its first bytes, which it
	// may only Peek; "" is no one in particular. It runs before the
	// connection is forwarded, under [IdentifyTimeout].
	Sender func(r *bufio.Reader) string
}

// Proxy forwards the connections it accepts to one target.
type Proxy struct {
	ln     net.Listener
	target string
	sender func(*bufio.Reader) string

	mu      sync.Mutex
	cut     bool
	cutFrom map[string]bool
	links   map[*link]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// link is one proxied connection.
type link struct {
	from      string
	down, up  net.Conn
	closeOnce sync.Once
}

// New listens on listen ("127.0.0.1:0" for a port the system chooses) and
// forwards each connection to target.
func New(listen, target string, o *Options) (*Proxy, error) {
	if o == nil {
		o = &Options{}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("tcpproxy: listen on %s: %w", listen, err)
	}
	p := &Proxy{ln: ln, target: target, sender: o.Sender, cutFrom: map[string]bool{}, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut drops every connection and refuses new ones until [Proxy.Heal].
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for l := range p.links {
		l.reset()
	}
}

// CutFrom drops the connections [Options.Sender] named sender, and
// refuses new ones from it, until [Proxy.HealFrom]. It is independent of
// [Proxy.Cut].
func (p *Proxy) CutFrom(sender string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutFrom[sender] = true
	for l := range p.links {
		if l.from == sender {
			l.reset()
		}
	}
}

// Heal undoes [Proxy.Cut]: new connections are forwarded again (but those
// of a sender still cut by [Proxy.CutFrom]). Dropped ones stay dropped;
// their ends reconnect.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// HealFrom undoes [Proxy.CutFrom] for sender.
func (p *Proxy) HealFrom(sender string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.cutFrom, sender)
}

// Close stops listening, drops every connection and returns once every
// goroutine of the proxy has ended.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for l := range p.links {
		l.reset()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// refused tells whether a connection from sender must be dropped now.
// p.mu is held.
func (p *Proxy) refused(from string) bool {
	return p.closed || p.cut || (from != "" && p.cutFrom[from])
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient accept error (EMFILE...): try again
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve names, dials and forwards one accepted connection.
func (p *Proxy) serve(down net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	refused := p.refused("")
	p.mu.Unlock()
	if refused {
		resetConn(down)
		return
	}
	r := bufio.NewReader(down)
	from := ""
	if p.sender != nil {
		down.SetReadDeadline(time.Now().Add(IdentifyTimeout))
		from = p.sender(r)
		down.SetReadDeadline(time.Time{})
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		resetConn(down)
		return
	}
	l := &link{from: from, down: down, up: up}
	p.mu.Lock()
	if p.refused(from) {
		p.mu.Unlock()
		l.reset()
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()

	done := make(chan struct{})
	go func() {
		io.Copy(up, r)
		l.reset()
		close(done)
	}()
	io.Copy(down, up)
	l.reset()
	<-done
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// reset drops both ends of l.
func (l *link) reset() {
	l.closeOnce.Do(func() {
		resetConn(l.down)
		resetConn(l.up)
	})
}

// resetConn closes c with a reset rather than an orderly end.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
