package witness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Addrs are a witness's two addresses: where reporters send, and where
// tests ask. `solo _witness` prints them as one line of JSON.
type Addrs struct {
	Report string `json:"report"` // UDP host:port
	HTTP   string `json:"http"`   // TCP host:port
}

// Options configure [Listen]. The zero value means [DefaultWindow] and
// [Now].
type Options struct {
	Window time.Duration
	Now    func() int64
}

// Server is a witness: a [Ledger] fed by a UDP socket and read over HTTP.
type Server struct {
	Ledger *Ledger
	now    func() int64
	udp    net.PacketConn
	tcp    net.Listener
	http   *http.Server
}

// Listen binds a witness's sockets on host (such as "127.0.0.1"), on ports
// the system chooses. [Server.Serve] then runs it.
func Listen(host string, o *Options) (*Server, error) {
	if o == nil {
		o = &Options{}
	}
	s := &Server{Ledger: NewLedger(o.Window), now: o.Now}
	if s.now == nil {
		s.now = Now
	}
	var err error
	if s.udp, err = net.ListenPacket("udp", net.JoinHostPort(host, "0")); err != nil {
		return nil, fmt.Errorf("witness: listen for reports: %w", err)
	}
	if s.tcp, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
		s.udp.Close()
		return nil, fmt.Errorf("witness: listen for queries: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", s.getState)
	mux.HandleFunc("POST /dead", s.postDead)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Addrs returns where the server listens.
func (s *Server) Addrs() Addrs {
	return Addrs{Report: s.udp.LocalAddr().String(), HTTP: s.tcp.Addr().String()}
}

// Serve receives reports and answers queries until ctx ends or
// [Server.Close]; it then closes both sockets and returns nil.
func (s *Server) Serve(ctx context.Context) error {
	go s.http.Serve(s.tcp)
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		n, _, err := s.udp.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("witness: receive: %w", err)
		}
		var r Report
		if json.Unmarshal(buf[:n], &r) != nil || s.Ledger.Record(r) != nil {
			s.Ledger.Malformed()
		}
	}
}

// Close closes both sockets.
func (s *Server) Close() error {
	s.http.Close()
	return s.udp.Close()
}

// getState answers GET /state; with ?after=V it first waits until the
// version passes V or a window has passed (liveness changes with time
// alone), so that a test waits on facts without a sleep of its own.
func (s *Server) getState(w http.ResponseWriter, r *http.Request) {
	if a := r.URL.Query().Get("after"); a != "" {
		after, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			http.Error(w, fmt.Sprintf("after: %q is not a version", a), http.StatusBadRequest)
			return
		}
		t := time.NewTimer(s.Ledger.window)
		defer t.Stop()
		for {
			v, ch := s.Ledger.Changed()
			if v > after {
				break
			}
			select {
			case <-ch:
				continue
			case <-t.C:
			case <-r.Context().Done():
				return
			}
			break
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.Ledger.State(s.now()))
}

// postDead answers POST /dead: the instances are dead as of now.
func (s *Server) postDead(w http.ResponseWriter, r *http.Request) {
	var d Dead
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&d); err != nil {
		http.Error(w, "dead: "+err.Error(), http.StatusBadRequest)
		return
	}
	n, err := s.Ledger.MarkDead(d, s.now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]int{"marked": n})
}
