package client_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// forbidden are the packages a program that imports only this package must
// not link: Solo's server side and what only the server needs. Solo's own
// packages are named exactly (the small leaves below them, such as
// eventstore/event, are allowed); third-party modules by path prefix.
var forbidden = struct{ exact, prefix []string }{
	exact: []string{
		"github.com/solo-rt/solo/eventstore",
		"github.com/solo-rt/solo/eventstore/etcdstore",
		"github.com/solo-rt/solo/supervisor",
		"github.com/solo-rt/solo/recovery",
		"github.com/solo-rt/solo/capability",
		"github.com/solo-rt/solo/shutdown",
		"github.com/solo-rt/solo/pkg/solo",
		"github.com/solo-rt/solo/pkg/session",
		"github.com/solo-rt/solo/pkg/kernel",
		"github.com/solo-rt/solo/pkg/api",
	},
	prefix: []string{
		"go.etcd.io/bbolt",
		"go.etcd.io/etcd",
		"github.com/thejerf/suture",
		"github.com/go-zeromq",
		"github.com/prometheus",
		"go.yaml.in/yaml",
	},
}

// TestClient_Dependencies keeps the client free of the daemon: a program
// that talks to Solo links the wire types, the domain and the standard
// library, never the event store, the supervisor or the runtime.
func TestClient_Dependencies(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Fatalf("no go tool to list the dependencies with (looked in GOROOT and PATH): %v", err)
		}
	}
	var stderr bytes.Buffer
	cmd := exec.Command(goTool, "list", "-deps", ".")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.String())
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	for _, dep := range deps {
		if isForbidden(dep) {
			t.Errorf("package client depends on %s; a Go client must not link the daemon (see the package doc)", dep)
		}
	}
}

func isForbidden(pkg string) bool {
	for _, p := range forbidden.exact {
		if pkg == p {
			return true
		}
	}
	for _, p := range forbidden.prefix {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}
