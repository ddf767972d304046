package solo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

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
// deploys one in-process service and one OS process, and kills the process.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "solo-example-")
	defer os.RemoveAll(dir)

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

	// Watch the log to know when both have started.
	events := rt.Events(ctx, rt.Store().Head()+1)
	rt.Deploy(ctx, solo.Spec{Name: "clock", Kind: "ticker", Config: json.RawMessage(`{"word":"tick"}`)})
	rt.Deploy(ctx, solo.Spec{Name: "sleeper", Command: []string{"sleep", "60"}})
	for started := 0; started < 2; {
		env := <-events.C()
		if env.Type == string(state.TypeServiceStarted) {
			rt.Sync(ctx, env.Pos)
			started++
		}
	}

	rt.Kill(ctx, "default", "sleeper")
	for _, s := range rt.List("default") {
		fmt.Println(s.Name, s.State)
	}
	// Output:
	// clock running
	// sleeper killed
}
