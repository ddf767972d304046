package webui

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPackage_Imports fails if the web view can reach the runtime, the
// store, the supervisor or the API's server other than through the API
// handler it is given: its reads and writes must be the API's.
func TestPackage_Imports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, bad := range []string{
		"github.com/solo-rt/solo/pkg/solo",
		"github.com/solo-rt/solo/pkg/api",
		"github.com/solo-rt/solo/eventstore",
		"github.com/solo-rt/solo/supervisor",
		"github.com/solo-rt/solo/capability",
		"go.etcd.io/bbolt",
	} {
		for _, d := range deps {
			if d == bad {
				t.Errorf("pkg/webui depends on %s", bad)
			}
		}
	}
}
