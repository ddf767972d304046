// Command grandchild starts a copy of itself (the grandchild of whoever
// started it) in the same process group, prints "grandchild PID", and
// sleeps until a signal ends it. The copy prints "child ready" once it
// ignores SIGTERM. The leader dies of SIGTERM; the grandchild ignores it, so
// only a SIGKILL sweep of the group removes it.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("child ready")
		sleep()
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command(self, "-child")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("grandchild %d\n", cmd.Process.Pid)
	sleep()
}

func sleep() {
	for {
		time.Sleep(time.Hour)
	}
}
