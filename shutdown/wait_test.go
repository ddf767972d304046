package shutdown

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/solo-rt/solo/pkg/exitcode"
)

// testLogger returns a logger writing to the returned buffer. Read the
// buffer only after the code under test has returned.
func testLogger() (hclog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Debug}), &buf
}

type drainCall struct {
	reason string
	grace  time.Duration
}

func TestWait(t *testing.T) {
	t.Run("first signal drains with its name and the grace", func(t *testing.T) {
		log, buf := testLogger()
		sigs := make(chan os.Signal, 2)
		sigs <- syscall.SIGTERM
		calls := make(chan drainCall, 1)
		code := wait(context.Background(), Options{
			Grace:  7 * time.Second,
			Logger: log,
			Drain: func(ctx context.Context, reason string, grace time.Duration) (int, error) {
				if ctx.Err() != nil {
					t.Errorf("drain context already done: %v", ctx.Err())
				}
				calls <- drainCall{reason, grace}
				return 3, nil
			},
		}.withDefaults(), sigs)
		if code != 3 {
			t.Fatalf("exit code %d, want Drain's 3", code)
		}
		if c := <-calls; c.reason != "SIGTERM" || c.grace != 7*time.Second {
			t.Fatalf("Drain(%q, %v), want (SIGTERM, 7s)", c.reason, c.grace)
		}
		if !strings.Contains(buf.String(), "signal=SIGTERM") {
			t.Fatalf("the signal is not logged:\n%s", buf)
		}
	})
	t.Run("second signal cancels the drain's context", func(t *testing.T) {
		log, buf := testLogger()
		sigs := make(chan os.Signal, 2)
		started := make(chan struct{})
		go func() {
			sigs <- syscall.SIGTERM
			<-started
			sigs <- syscall.SIGINT
		}()
		code := wait(context.Background(), Options{
			Logger: log,
			Drain: func(ctx context.Context, reason string, grace time.Duration) (int, error) {
				close(started)
				<-ctx.Done() // a drain that would otherwise wait out its grace
				return 1, nil
			},
		}.withDefaults(), sigs)
		if code != 1 {
			t.Fatalf("exit code %d, want 1", code)
		}
		if !strings.Contains(buf.String(), "second signal: forcing") || !strings.Contains(buf.String(), "signal=SIGINT") {
			t.Fatalf("the forcing is not logged:\n%s", buf)
		}
	})
	t.Run("drain error gives 1", func(t *testing.T) {
		for _, drainCode := range []int{0, 1, 2} {
			sigs := make(chan os.Signal, 1)
			sigs <- syscall.SIGINT
			code := wait(context.Background(), Options{
				Drain: func(context.Context, string, time.Duration) (int, error) {
					return drainCode, errors.New("close log: disk on fire")
				},
			}.withDefaults(), sigs)
			if code != exitcode.Error {
				t.Fatalf("Drain (%d, error): exit code %d, want %d", drainCode, code, exitcode.Error)
			}
		}
	})
	t.Run("context done drains with reason context and defaults", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		calls := make(chan drainCall, 1)
		code := wait(ctx, Options{
			Drain: func(dctx context.Context, reason string, grace time.Duration) (int, error) {
				if dctx.Err() != nil {
					t.Error("the drain is forced because the triggering context ended")
				}
				calls <- drainCall{reason, grace}
				return 0, nil
			},
		}.withDefaults(), make(chan os.Signal))
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
		if c := <-calls; c.reason != "context" || c.grace != DefaultGrace {
			t.Fatalf("Drain(%q, %v), want (context, %v)", c.reason, c.grace, DefaultGrace)
		}
	})
	t.Run("nil drain exits clean", func(t *testing.T) {
		sigs := make(chan os.Signal, 1)
		sigs <- syscall.SIGTERM
		if code := wait(context.Background(), Options{}.withDefaults(), sigs); code != exitcode.OK {
			t.Fatalf("exit code %d", code)
		}
	})
	t.Run("real signals", func(t *testing.T) {
		// Wait itself, with a signal raised for real: the context starts
		// the drain (so no signal can race signal.Notify), and the drain
		// raises the forcing signal while Wait is catching it.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		code := Wait(ctx, Options{
			Signals: []os.Signal{syscall.SIGUSR1},
			Drain: func(ctx context.Context, reason string, grace time.Duration) (int, error) {
				if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
					return 0, err
				}
				<-ctx.Done()
				return 4, nil
			},
		})
		if code != 4 {
			t.Fatalf("exit code %d, want 4", code)
		}
	})
}

func TestSignalName(t *testing.T) {
	for sig, want := range map[os.Signal]string{
		syscall.SIGTERM:   "SIGTERM",
		syscall.SIGINT:    "SIGINT",
		os.Interrupt:      "SIGINT",
		fakeSignal("hup"): "hup",
	} {
		if got := signalName(sig); got != want {
			t.Errorf("signalName(%v) = %q, want %q", sig, got, want)
		}
	}
}

type fakeSignal string

func (s fakeSignal) String() string { return string(s) }
func (fakeSignal) Signal()          {}

// TestCatch_KeepsAnEarlySignal: a signal raised after Catch but before Wait
// (a daemon still recovering) does not kill the process; Wait drains at once.
func TestCatch_KeepsAnEarlySignal(t *testing.T) {
	c := Catch(syscall.SIGUSR2)
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	var gotReason string
	code := c.Wait(context.Background(), Options{
		Signals: []os.Signal{syscall.SIGUSR2},
		Drain: func(ctx context.Context, reason string, grace time.Duration) (int, error) {
			gotReason = reason
			return 7, nil
		},
	})
	if code != 7 || gotReason != "SIGUSR2" {
		t.Fatalf("Wait = %d with reason %q; want 7 and SIGUSR2", code, gotReason)
	}
}
