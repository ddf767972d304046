// Command solo is Solo's one binary: `solo daemon` runs the supervisor, and
// every other subcommand talks to a running daemon through its API.
//
// main only maps errors to the exit codes of the CLI contract:
// 0 ok, 1 error, 2 usage, 3 not found, 4 denied, 5 daemon unreachable.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/solo-rt/solo/pkg/exitcode"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	code := exitCode(err)
	if err != nil && code != exitcode.OK {
		fmt.Fprintln(stderr, "solo:", message(err))
	}
	if a.exit != 0 && code == exitcode.OK {
		code = a.exit
	}
	return code
}
