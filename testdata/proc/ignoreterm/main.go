// Command ignoreterm ignores SIGTERM, prints "ready" and sleeps until killed.
// It is a service that only SIGKILL can stop, for the supervisor tests.
package main

import (
	"fmt"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	signal.Ignore(syscall.SIGTERM)
	fmt.Println("ready")
	for {
		time.Sleep(time.Hour)
	}
}
