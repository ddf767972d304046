package shutdown

import (
	"fmt"
	"os"
	"testing"
)

// childEnv switches the test binary into a helper child process (see
// reaper_test.go): the child becomes a subreaper, which must not happen to
// the test process itself.
const childEnv = "SOLO_SHUTDOWN_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "reaper":
		if err := reaperChild(os.Stdout); err != nil {
			fmt.Println("CHILD FAIL:", err)
			os.Exit(1)
		}
		fmt.Println("CHILD OK")
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}
