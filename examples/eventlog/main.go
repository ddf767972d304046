// Command eventlog appends a few events to a Solo event store and prints the
// whole log: the smallest real use of package eventstore.
//
//	go run ./examples/eventlog -data ./data
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/solo-rt/solo/eventstore"
)

func main() {
	dir := flag.String("data", "./data", "directory that holds solo.db")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "eventlog:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	s, err := eventstore.Open(filepath.Join(dir, "solo.db"), nil)
	if err != nil {
		return err
	}
	defer s.Close()

	ctx := context.Background()
	pid := os.Getpid()
	_, err = s.Append(ctx,
		eventstore.Event{Type: "system_started", Actor: "local", Data: json.RawMessage(fmt.Sprintf(`{"pid":%d}`, pid))},
		eventstore.Event{Type: "service_deployed", Tenant: "default", Subject: "hello", Actor: "local",
			Data: json.RawMessage(`{"spec":{"name":"hello","command":["sleep","60"]},"generation":1}`)},
	)
	if err != nil {
		return err
	}
	for env, err := range s.Read(1, 0) {
		if err != nil {
			return err
		}
		fmt.Printf("%6d  %s  %-18s %s/%s  %s\n", env.Pos, env.Time.Format("15:04:05.000"), env.Type, env.Tenant, env.Subject, env.Data)
	}
	rep, err := s.Check(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("check: %d events in %d streams, consistent\n", rep.Events, rep.Streams)
	return nil
}
