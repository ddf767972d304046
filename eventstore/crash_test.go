package eventstore_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/eventstore/storetest"
)

const crashChildEnv = "SOLO_EVENTSTORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path) // never returns
	}
	code := m.Run()
	if bigPath != "" {
		os.RemoveAll(filepath.Dir(bigPath))
	}
	os.Exit(code)
}

// crashChild is the writer that TestStore_CrashRecovery kills: it appends
// from 8 goroutines forever and prints each acknowledged event.
func crashChild(path string) {
	s, err := eventstore.Open(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				batch := make([]eventstore.Event, 1+i%3)
				for j := range batch {
					batch[j] = storetest.Ev("default", fmt.Sprintf("w%d", w), "tick", i)
					batch[j].ID = s.NewID()
				}
				pos, err := s.Append(context.Background(), batch...)
				if err != nil {
					fmt.Fprintln(os.Stderr, "child append:", err)
					os.Exit(3)
				}
				// Acknowledge only after Append returned: these are the
				// events that must survive the SIGKILL.
				mu.Lock()
				for j := range batch {
					fmt.Fprintf(out, "ack %d %s\n", pos[j], batch[j].ID)
				}
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}

func TestStore_CrashRecovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "solo.db")
	acked := map[uint64]ulid.ULID{}
	const rounds = 20
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())

		// Kill after a random number of acknowledgements: a random instant,
		// chosen by events rather than by the clock.
		killAfter := 1 + rand.IntN(100)
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ack" {
				continue // a line cut by the kill
			}
			pos, err := strconv.ParseUint(f[1], 10, 64)
			require.NoError(t, err)
			id, err := ulid.Parse(f[2])
			require.NoError(t, err)
			acked[pos] = id
			if n++; n == killAfter {
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			}
		}
		err = cmd.Wait()
		require.Error(t, err, "round %d: the child exited on its own", round)
		if n < killAfter {
			t.Fatalf("round %d: child died after %d acks, before being killed: %v", round, n, err)
		}

		// Reopen: every acknowledged event is there, intact, at its
		// position; positions are gapless; the file checks clean.
		s, err := eventstore.Open(path, nil)
		require.NoError(t, err, "round %d", round)
		_, err = s.Check(context.Background())
		require.NoError(t, err, "round %d", round)
		want := uint64(1)
		got := map[uint64]ulid.ULID{}
		for env, err := range s.Read(1, 0) {
			require.NoError(t, err)
			require.Equal(t, want, env.Pos, "round %d: gap", round)
			want++
			got[env.Pos] = env.ID
		}
		for pos, id := range acked {
			require.Equal(t, id, got[pos], "round %d: acknowledged event %d lost or changed", round, pos)
		}
		require.NoError(t, s.Close())
	}
	t.Logf("%d rounds, %d acknowledged events survived", rounds, len(acked))
}
