package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
)

// MaxSocketPath is the longest path a unix socket may have on Linux.
const MaxSocketPath = 107

// Notify is the daemon's end of the systemd notify protocol for one
// service: a unixgram socket at a path the service gets as NOTIFY_SOCKET.
// It honours READY=1 (see [Notify.Ready]), STATUS= (see [Notify.Status]) and
// MAINPID= (passed to the check given to [Listen]). One goroutine reads it
// while it is open.
type Notify struct {
	path  string
	conn  *net.UnixConn
	ready chan struct{}
	once  sync.Once

	mu      sync.Mutex
	status  string
	mainPID int
}

// Listen opens the socket at path, replacing a stale one. checkMainPID, if
// set, is asked about each MAINPID= before it is taken; an error refuses it
// and is passed to refused.
func Listen(path string, checkMainPID func(pid int) error, refused func(error)) (*Notify, error) {
	if len(path) > MaxSocketPath {
		return nil, fmt.Errorf("notify socket path %s is longer than %d bytes; use a shorter data dir", path, MaxSocketPath)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	// Any local user the service runs as must be able to send to it.
	if err := os.Chmod(path, 0o666); err != nil {
		conn.Close()
		return nil, err
	}
	n := &Notify{path: path, conn: conn, ready: make(chan struct{})}
	go n.read(checkMainPID, refused)
	return n, nil
}

// Path is the socket's path (NOTIFY_SOCKET).
func (n *Notify) Path() string { return n.path }

func (n *Notify) read(check func(int) error, refused func(error)) {
	buf := make([]byte, 4096)
	for {
		k, _, err := n.conn.ReadFromUnix(buf)
		if err != nil {
			return // closed
		}
		for _, line := range bytes.Split(buf[:k], []byte("\n")) {
			key, val, ok := bytes.Cut(line, []byte("="))
			if !ok {
				continue
			}
			switch string(key) {
			case "READY":
				if string(val) == "1" {
					n.once.Do(func() { close(n.ready) })
				}
			case "STATUS":
				n.mu.Lock()
				n.status = string(val)
				n.mu.Unlock()
			case "MAINPID":
				pid, err := strconv.Atoi(string(val))
				if err == nil && pid > 0 && check != nil {
					err = check(pid)
				}
				if err != nil {
					if refused != nil {
						refused(fmt.Errorf("MAINPID=%s refused: %w", val, err))
					}
					continue
				}
				n.mu.Lock()
				n.mainPID = pid
				n.mu.Unlock()
			}
		}
	}
}

// Ready is a probe that passes once the service has sent READY=1.
func (n *Notify) Ready(ctx context.Context) error {
	select {
	case <-n.ready:
		return nil
	case <-ctx.Done():
		return errors.New("no READY=1 on NOTIFY_SOCKET yet")
	}
}

// Status is the latest STATUS= the service sent, and MAINPID= it gave
// (0 for none).
func (n *Notify) Status() (status string, mainPID int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status, n.mainPID
}

// Close closes and removes the socket.
func (n *Notify) Close() error {
	err := n.conn.Close()
	os.Remove(n.path)
	return err
}
