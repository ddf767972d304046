package shutdown

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests keep the files in ../deploy from rotting silently: they are
// not Go, so nothing else would notice a probe path or a timeout that no
// longer fits the daemon. The checks are on plain text, line by line; the
// files are written to be read that way (one key per line, flow lists for
// args).

const deployDir = "../deploy"

func TestDeploy_Kubernetes(t *testing.T) {
	lines := readLines(t, filepath.Join(deployDir, "kubernetes", "statefulset.yaml"))
	args := flowList(t, mustValue(t, lines, "args"))
	if got := mustValue(t, lines, "kind"); got != "StatefulSet" {
		t.Errorf("kind %q", got)
	}
	if got := mustValue(t, lines, "replicas"); got != "1" {
		t.Errorf("replicas %q: the event log must have exactly one writer", got)
	}

	t.Run("termination grace above --grace", func(t *testing.T) {
		secs, err := strconv.Atoi(mustValue(t, lines, "terminationGracePeriodSeconds"))
		if err != nil {
			t.Fatal(err)
		}
		grace := daemonGrace(t, args)
		if time.Duration(secs)*time.Second <= grace {
			t.Fatalf("terminationGracePeriodSeconds %d is not above --grace %v: the kubelet would SIGKILL the drain", secs, grace)
		}
	})
	t.Run("probes on the daemon's port", func(t *testing.T) {
		listen, ok := flagValue(args, "--listen")
		if !ok {
			t.Fatalf("no --listen in args %q: the probes would have nothing to reach", args)
		}
		_, port, _ := strings.Cut(listen, ":")
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
			block := blockAfter(t, lines, probe)
			if got := mustValue(t, block, "path"); got != path {
				t.Errorf("%s path %q, want %q", probe, got, path)
			}
			if got := mustValue(t, block, "port"); got != port {
				t.Errorf("%s port %q, want the --listen port %q", probe, got, port)
			}
		}
	})
	t.Run("non-root and the data volume", func(t *testing.T) {
		for key, want := range map[string]string{
			"runAsNonRoot": "true",
			"runAsUser":    "10001",
			"fsGroup":      "10001",
			"mountPath":    "/var/lib/solo",
		} {
			if got := mustValue(t, lines, key); got != want {
				t.Errorf("%s %q, want %q", key, got, want)
			}
		}
		if !slices.Contains(lines, "volumeClaimTemplates:") {
			t.Error("no volumeClaimTemplates: the event log would not survive the pod")
		}
	})
}

func TestDeploy_Systemd(t *testing.T) {
	lines := readLines(t, filepath.Join(deployDir, "systemd", "solo.service"))
	if !slices.Contains(lines, "KillMode=process") {
		t.Error("no KillMode=process: a daemon restart would kill every service")
	}
	for _, want := range []string{"Restart=on-failure", "StateDirectory=solo"} {
		if !slices.Contains(lines, want) {
			t.Errorf("no %s", want)
		}
	}
	exec := strings.Fields(mustValue(t, lines, "ExecStart"))
	if len(exec) < 2 || exec[0] != "/usr/local/bin/solo" || exec[1] != "daemon" {
		t.Fatalf("ExecStart %q, want /usr/local/bin/solo daemon ...", exec)
	}
	if dir, _ := flagValue(exec, "--data-dir"); dir != "/var/lib/solo" {
		t.Errorf("--data-dir %q, want the StateDirectory /var/lib/solo", dir)
	}
	timeout := systemdSeconds(t, mustValue(t, lines, "TimeoutStopSec"))
	if grace := daemonGrace(t, exec); timeout <= grace {
		t.Errorf("TimeoutStopSec %v is not above --grace %v: systemd would SIGKILL the drain", timeout, grace)
	}
}

func TestDeploy_Dockerfile(t *testing.T) {
	lines := readLines(t, filepath.Join(deployDir, "Dockerfile"))
	for _, want := range []string{
		`ENTRYPOINT ["/usr/local/bin/solo", "daemon"]`, // exec form: Solo is PID 1
		`VOLUME ["/var/lib/solo"]`,
		`ENV SOLO_DATA_DIR=/var/lib/solo`,
		`USER solo:solo`,
		`FROM golang:1.26 AS build`,
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("no line %s", want)
		}
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{"go build -trimpath -o /out/solo ./cmd/solo", "--uid 10001"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q", want)
		}
	}
}

// readLines returns the file's lines, trimmed, without blank lines and
// comments.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, line)
	}
	return lines
}

// mustValue returns the value of the first "key: value" (YAML) or
// "key=value" (unit file) line, a leading "- " ignored.
func mustValue(t *testing.T, lines []string, key string) string {
	t.Helper()
	for _, line := range lines {
		line = strings.TrimPrefix(line, "- ")
		for _, sep := range []string{": ", "="} {
			if v, ok := strings.CutPrefix(line, key+sep); ok {
				return strings.Trim(strings.TrimSpace(v), `"'`)
			}
		}
	}
	t.Fatalf("no %q line", key)
	return ""
}

// blockAfter returns the lines after the "key:" line, up to the next probe
// or container-level key; enough for the probes' path and port.
func blockAfter(t *testing.T, lines []string, key string) []string {
	t.Helper()
	i := slices.Index(lines, key+":")
	if i < 0 {
		t.Fatalf("no %s", key)
	}
	block := lines[i+1:]
	for j, line := range block {
		if strings.HasSuffix(line, "Probe:") || line == "securityContext:" || line == "volumeMounts:" {
			return block[:j]
		}
	}
	return block
}

// flowList parses a YAML flow sequence of strings: ["a", "b"].
func flowList(t *testing.T, v string) []string {
	t.Helper()
	v, ok := strings.CutPrefix(v, "[")
	if !ok || !strings.HasSuffix(v, "]") {
		t.Fatalf("not a flow list: %q", v)
	}
	var out []string
	for item := range strings.SplitSeq(strings.TrimSuffix(v, "]"), ",") {
		out = append(out, strings.Trim(strings.TrimSpace(item), `"'`))
	}
	return out
}

// flagValue finds "--name value" or "--name=value" in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// daemonGrace is the --grace in args, or the daemon's default.
func daemonGrace(t *testing.T, args []string) time.Duration {
	t.Helper()
	v, ok := flagValue(args, "--grace")
	if !ok {
		return DefaultGrace // the same default as `solo daemon --grace`
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("--grace %q: %v", v, err)
	}
	return d
}

// systemdSeconds parses a systemd time span of the simple kinds: "30"
// (seconds) or a Go-style duration such as "30s" or "1m30s".
func systemdSeconds(t *testing.T, v string) time.Duration {
	t.Helper()
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("time span %q: %v (keep it simple, e.g. 30s)", v, err)
	}
	return d
}
