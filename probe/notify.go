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
	"time"
)

// MaxSocketPath is the longest path a unix socket may have on Linux.
const MaxSocketPath = 107

// Notify is the daemon's end of the systemd notify protocol for one
// service: a unixgram socket at a path the service gets as NOTIFY_SOCKET.
// It honours READY=1 (see [Notify.Ready]), STATUS= (see [Notify.Status]) and
// MAINPID= (passed to the check given to [Listen]), WATCHDOG=1 and
// WATCHDOG=trigger (see [Notify.Watchdog]). One goroutine reads it while it
// is open.
type Notify struct {
	path  string
	conn  *net.UnixConn
	ready chan struct{}
	once  sync.Once

	mu      sync.Mutex
	status  string
	mainPID int
	dog     *watchdog // armed by Watchdog
	// kicked is when the last WATCHDOG=1 came before a watchdog was
	// armed, triggered whether a WATCHDOG=trigger did.
	kicked    time.Time
	triggered bool
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
			case "WATCHDOG":
				n.mu.Lock()
				dog := n.dog
				if dog == nil {
					// Before the watchdog is armed (the service is not
					// ready yet): kept, and counted once it is, as
					// systemd counts every WATCHDOG=1.
					switch string(val) {
					case "1":
						n.kicked = time.Now()
					case "trigger":
						n.triggered = true
					}
				}
				n.mu.Unlock()
				if dog != nil {
					dog.message(string(val))
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

// WatchdogEnv is the environment a service gets for a watchdog of d, as
// systemd sets it: WATCHDOG_USEC, the microseconds within which it must
// send WATCHDOG=1 (sd_watchdog_enabled reads it). WATCHDOG_PID is left
// unset: the child's pid is not known before it is forked, and
// sd_watchdog_enabled takes an unset WATCHDOG_PID as "this process".
func WatchdogEnv(d time.Duration) string {
	return "WATCHDOG_USEC=" + strconv.FormatInt(d.Microseconds(), 10)
}

// Watchdog arms the watchdog, systemd's WatchdogSec: each WATCHDOG=1 the
// service sends gives it d more; when d passes without one, or the service
// sends WATCHDOG=trigger, report(false, why) is called once and the
// watchdog ends. The first WATCHDOG=1 calls report(true, nil). Messages
// that came before it was armed count: the deadline runs from the last
// WATCHDOG=1 (or from now if none came), and an earlier WATCHDOG=trigger
// fails it at once. stop disarms it and returns once report can no longer
// be called; it is idempotent. A Notify has one watchdog at a time: arming
// another replaces it.
func (n *Notify) Watchdog(d time.Duration, report func(healthy bool, reason error)) (stop func()) {
	dog := &watchdog{d: d, report: report}
	n.mu.Lock()
	kicked, triggered := n.kicked, n.triggered
	n.kicked, n.triggered = time.Time{}, false // counted once, by this watchdog
	first := d
	if !kicked.IsZero() {
		first = max(d-time.Since(kicked), 0)
	}
	dog.mu.Lock()
	dog.timer = time.AfterFunc(first, func() {
		dog.fail(fmt.Errorf("no WATCHDOG=1 within %s", d))
	})
	dog.mu.Unlock()
	n.dog = dog
	n.mu.Unlock()
	if !kicked.IsZero() {
		dog.kicked()
	}
	if triggered {
		dog.message("trigger")
	}
	return func() {
		n.mu.Lock()
		if n.dog == dog {
			n.dog = nil
		}
		n.mu.Unlock()
		dog.stop()
	}
}

// watchdog is one armed watchdog; its mutex is held while it reports, so
// that stop returns only once no report is under way.
type watchdog struct {
	d      time.Duration
	report func(bool, error)

	mu      sync.Mutex
	timer   *time.Timer
	done    bool
	healthy bool
}

func (w *watchdog) message(val string) {
	switch val {
	case "1":
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.done {
			return
		}
		w.timer.Reset(w.d)
		w.healthyOnce()
	case "trigger":
		w.fail(errors.New("WATCHDOG=trigger: the service asked to be restarted"))
	}
}

// kicked counts a WATCHDOG=1 that came before the watchdog was armed (its
// timer already runs from it).
func (w *watchdog) kicked() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.healthyOnce()
	}
}

// healthyOnce reports healthy at the first WATCHDOG=1; w.mu is held.
func (w *watchdog) healthyOnce() {
	if !w.healthy {
		w.healthy = true
		w.report(true, nil)
	}
}

func (w *watchdog) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	w.timer.Stop()
	w.report(false, err)
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	w.timer.Stop()
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
