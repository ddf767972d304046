package solo_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// FuzzDecodeApplyFile fuzzes [solo.DecodeApplyFile], the reader of the
// YAML files `solo apply -f` takes:
//
//   - it never panics, and an error has a message; an entry's error names
//     the entry (services[i]);
//   - each service it returns validates, or fails with a field named;
//   - what it returns survives the trip to the daemon, JSON, unchanged;
//   - and that JSON, being YAML too, is itself an apply file that reads
//     back as the same services: the file format and the wire format
//     agree.
func FuzzDecodeApplyFile(f *testing.F) {
	for _, s := range []string{
		`services:
  - name: web
    tenant: default
    command: ["python3", "-m", "http.server", "8080"]
    restart: on-failure
    env: {PORT: "8080"}
    dir: /srv/web
    max_restarts: 5
    restart_window: 1m
    stop_signal: INT
    stop_timeout: 10s
  - name: ticker
    kind: ticker
    config: {every: 1s, tags: [a, b], nested: {x: 1.5, y: null}}
`,
		"services:\n  - name: a\n    command: [sleep, '1']\n---\nservices:\n  - name: b\n    command: [sleep, '2']\n",
		"services:\n  - &w {name: web, command: [sleep, '1']}\n  - *w\n",
		"base: &b {name: web}\nservices: [*b]\n",
		"services:\n  - name: web\n    comand: [sleep]\n",
		"services:\n  - name: web\n    name: api\n    command: [sleep]\n",
		"services:\n  - name: web\n    command: sleep\n    stop_timeout: forever\n",
		"services:\n  - name: x\n    kind: k\n    config: {.nan: .inf}\n",
		"services:\n  - name: x\n    kind: k\n    config: {[a]: 1}\n",
		"services: []\n",
		"# nothing\n",
		"",
		"services:\n  - name: x\n    command: [\"a\\0b\"]\n    env: {\"A=B\": \"\\xff\", B: \"\\x7f\\x85\"}\n",
		"a: &a [*a]\n",
		`{"services":[{"name":"web","command":["sleep","1"],"restart_window":"1m0s","max_restarts":0}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		req, err := solo.DecodeApplyFile(bytes.NewReader(file))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			var ee *solo.ApplyEntryError
			if errors.As(err, &ee) && (ee.Index < 0 || !strings.HasPrefix(ee.Field(), "services[")) {
				t.Fatalf("entry error %v names index %d, field %q", err, ee.Index, ee.Field())
			}
			return
		}
		if req.Prune || req.DryRun {
			t.Fatalf("a file set prune or dry_run: %+v", req)
		}
		for i, s := range req.Services {
			if err := s.Validate(); err != nil {
				var fe *state.FieldError
				if !errors.As(err, &fe) || fe.Field == "" {
					t.Fatalf("services[%d]: %v names no field", i, err)
				}
			}
		}

		// To the daemon: the body of POST /v1/apply.
		wire, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("encode the request: %v", err)
		}
		var sent solo.ApplyRequest
		dec := json.NewDecoder(bytes.NewReader(wire))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sent); err != nil {
			t.Fatalf("the daemon cannot read %s: %v", wire, err)
		}
		sameServices(t, "sent as JSON", req.Services, sent.Services)

		// JSON is YAML, but for the characters YAML will not take
		// unescaped, which JSON writes as they are (DEL, C1 controls, and
		// NEL, a line break to YAML 1.1's reader): the body is an apply
		// file too.
		if !yamlPrintable(wire) {
			return
		}
		again, err := solo.DecodeApplyFile(bytes.NewReader(wire))
		if err != nil {
			t.Fatalf("the request as a file, %s: %v", wire, err)
		}
		sameServices(t, "read back from JSON", req.Services, again.Services)
	})
}

// yamlPrintable reports whether b holds only characters YAML takes
// unescaped (YAML 1.2, 5.1) inside a JSON string. NEL (U+0085) is
// printable there but a line break to the YAML 1.1 reader apply files go
// through, which folds it inside a quoted scalar; JSON writes it raw.
func yamlPrintable(b []byte) bool {
	for _, r := range string(b) {
		switch {
		case r == '\t', r == '\n', r == '\r', r >= 0x20 && r <= 0x7e,
			r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd && r != 0xfeff, r >= 0x10000 && r <= 0x10ffff:
		default:
			return false
		}
	}
	return true
}

// sameServices fails unless got holds the services of want, config
// compared as JSON values (key order and number spelling aside).
func sameServices(t *testing.T, how string, want, got []state.Spec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d services, want %d", how, len(got), len(want))
	}
	for i := range want {
		w, g := want[i].Clone(), got[i].Clone()
		if !sameJSON(w.Config, g.Config) {
			t.Fatalf("%s: services[%d].config is %s, want %s", how, i, g.Config, w.Config)
		}
		w.Config, g.Config = nil, nil
		if !w.Equal(g) {
			t.Fatalf("%s: services[%d] differs:\n want %+v\n got  %+v", how, i, w, g)
		}
	}
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}
