package solo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/solo-rt/solo/cgroup"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// ticker is an in-process service: it writes a line, then runs until stopped.
type ticker struct {
	log  io.Writer
	word string
}

func (t ticker) Serve(ctx context.Context) error {
	fmt.Fprintln(t.log, t.word)
	<-ctx.Done()
	return nil
}

// Example embeds Solo in a program: it registers an in-process kind,
// deploys one in-process service and one OS process and waits for each to
// start, sees a command that cannot start refused at once, restarts the
// process, stops it, and starts it again.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "solo-example-")
	defer os.RemoveAll(dir)
	// A drain keeps the services' (empty) cgroups for their next start;
	// an installation that goes away removes them.
	defer cgroup.Open(dir).Prune()

	reg := solo.NewRegistry()
	reg.Register("ticker", func(cfg json.RawMessage, log io.Writer) (solo.GoService, error) {
		var c struct{ Word string }
		if err := json.Unmarshal(cfg, &c); err != nil {
			return nil, err
		}
		return ticker{log: log, word: c.Word}, nil
	})

	rt, err := solo.Open(ctx, solo.Options{DataDir: dir, Registry: reg})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close(ctx)

	// Deploy, then wait for the first attempt to start: exec succeeded (or
	// the factory returned), or the reason it could not.
	deploy := func(spec solo.Spec) (solo.ServiceView, error) {
		res, err := rt.Deploy(ctx, spec)
		if err != nil {
			return solo.ServiceView{}, err
		}
		wctx, cancel := context.WithTimeout(ctx, solo.DefaultStartWait)
		defer cancel()
		return rt.WaitStarted(wctx, spec.Tenant, spec.Name, res.Pos)
	}
	if _, err := deploy(solo.Spec{Name: "clock", Kind: "ticker", Config: json.RawMessage(`{"word":"tick"}`)}); err != nil {
		fmt.Println(err)
	}
	sleeper, err := deploy(solo.Spec{Name: "sleeper", Command: []string{"sleep", "60"}})
	fmt.Println("sleeper started:", err == nil && sleeper.PID > 0)

	// A script whose interpreter does not exist cannot start: said at once.
	script := filepath.Join(dir, "typo.sh")
	os.WriteFile(script, []byte("#!/nonexistent/sh\n"), 0o755)
	_, err = deploy(solo.Spec{Name: "typo", Command: []string{script}, Restart: state.RestartNever})
	fmt.Println("typo did not start:", errors.Is(err, solo.ErrStartFailed))

	// Restart: the same spec, a new process, not counted as a restart.
	res, _ := rt.Restart(ctx, "default", "sleeper")
	again, _ := rt.WaitStarted(ctx, "default", "sleeper", res.Pos)
	fmt.Println("restarted with a new pid:", again.PID != sleeper.PID, "restarts:", again.Restarts)

	rt.Kill(ctx, "default", "sleeper") // solo stop: down until started again
	for _, s := range rt.List("default") {
		fmt.Println(s.Name, s.State)
	}
	res, _ = rt.Start(ctx, "default", "sleeper")
	back, _ := rt.WaitStarted(ctx, "default", "sleeper", res.Pos)
	fmt.Println("sleeper", back.State)
	// Output:
	// sleeper started: true
	// typo did not start: true
	// restarted with a new pid: true restarts: 0
	// clock running
	// sleeper killed
	// typo failed
	// sleeper running
}
