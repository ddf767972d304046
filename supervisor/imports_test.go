package supervisor

import (
	"os/exec"
	"strings"
	"testing"
)

// The layers above the supervisor. It speaks its own language of processes
// and reports facts to its owner ([Recorder]); the domain (pkg/state, and
// the log under it) is the owner's. See the package doc.
var above = []string{
	"github.com/solo-rt/solo/pkg/state",
	"github.com/solo-rt/solo/eventstore",
	"github.com/solo-rt/solo/recovery",
	"github.com/solo-rt/solo/pkg/solo",
}

// TestPackage_Imports fails if the supervisor imports a layer above it,
// directly or through another package, and names the chain that does.
func TestPackage_Imports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}:{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	self := ""
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		pkg, deps, _ := strings.Cut(strings.TrimSpace(line), ":")
		imports[pkg] = strings.Fields(deps)
		self = pkg // go list -deps prints the package itself last
	}
	if self != "github.com/solo-rt/solo/supervisor" {
		t.Fatalf("go list -deps ended with %q, not the supervisor", self)
	}
	for _, bad := range above {
		if chain := importChain(imports, self, bad); chain != nil {
			t.Errorf("supervisor imports %s: %s", bad, strings.Join(chain, " -> "))
		}
	}
}

// importChain returns a shortest chain of imports from one package to
// another, or nil if there is none.
func importChain(imports map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, d := range imports[p] {
			if _, seen := prev[d]; !seen {
				prev[d] = p
				queue = append(queue, d)
			}
		}
	}
	return nil
}
