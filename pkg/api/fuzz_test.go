package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/solo-rt/solo/capability"
	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/pkg/wire"
)

// The request bodies of deploy, apply, session tasks and token grants are
// the daemon's outside input. Each fuzzer below runs a body through the
// decoder the server runs it through (bounded, unknown fields refused,
// nothing after the object), then through the validation that follows,
// and checks that:
//
//   - nothing panics, and a bad body is the caller's error (400 or 413,
//     with a message), never a 500;
//   - a body over the bound is refused;
//   - what decodes survives JSON encoding and decoding again (the client
//     sends what it decoded);
//   - what passes validation is what the log stores and reads back.

// fuzzBodyLimit is small so that the fuzzer reaches the bound.
const fuzzBodyLimit = 4 << 10

// decodeBounded decodes body as deploy, grant and submit do, with a
// MaxBodyBytes of fuzzBodyLimit.
func decodeBounded(body []byte, v any) error {
	return decodeWith(&Server{opts: Options{MaxBodyBytes: fuzzBodyLimit}}, body, v)
}

// decodeWith runs s's body decoder on body, as a handler does.
func decodeWith(s *Server, body []byte, v any) error {
	r := httptest.NewRequest(http.MethodPost, "/v1/fuzz", bytes.NewReader(body))
	return s.decodeBody(httptest.NewRecorder(), r, v)
}

// checkDecodeErr checks that a body refused by the decoder answers 400 or
// 413 with a message.
func checkDecodeErr(t *testing.T, body []byte, err error) {
	t.Helper()
	if err == nil {
		if len(body) > fuzzBodyLimit {
			t.Fatalf("a body of %d bytes, over the limit of %d, was accepted", len(body), fuzzBodyLimit)
		}
		return
	}
	checkClientErr(t, "decode", err)
}

// checkClientErr checks that err answers 400 or 413, with a message.
func checkClientErr(t *testing.T, what string, err error) {
	t.Helper()
	status, b := errorBody(err)
	if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
		t.Fatalf("%s: %v answers %d %s, want 400 or 413: bad input is the caller's error", what, err, status, b.Code)
	}
	if b.Error == "" {
		t.Fatalf("%s: error without a message", what)
	}
}

// reencode encodes v as the client would and decodes it into out with the
// server's decoder, with room to spare: the encoding may be larger than
// the body it came from (an invalid UTF-8 byte becomes a six-byte \ufffd).
func reencode(t *testing.T, v, out any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	if err := decodeWith(&Server{opts: Options{MaxBodyBytes: DefaultMaxApplyBytes}}, b, out); err != nil {
		t.Fatalf("decode of re-encoded %s: %v", b, err)
	}
}

// FuzzDeployBody fuzzes POST /v1/services: the body decoder, then
// [state.Spec.Normalize] and [state.Spec.Validate] as [solo.Runtime.Deploy]
// runs them, then the service_deployed event the log stores.
func FuzzDeployBody(f *testing.F) {
	for _, s := range []string{
		`{"name":"web","command":["python3","-m","http.server","8080"],"env":{"PORT":"8080"},"restart":"on-failure","max_restarts":3,"restart_window":"30s","stop_signal":"INT","stop_timeout":5000000000}`,
		`{"tenant":"b","name":"ticker","kind":"ticker","config":{"every": "1s", "tag":"<a&b>"}}`,
		`{"name":"x","command":["sleep","1"],"dir":"relative"}`,
		`{"name":"x","command":["sleep","1"],"restart_window":"-1s"}`,
		`{"name":"x","command":["sleep","1"],"max_restarts":null,"config":null,"env":{}}`,
		`{"name":"x","command":["sleep","1"]} {"name":"y"}`,
		`{"name":"x","comand":["sleep"]}`,
		`{"name":"x","command":"sleep"}`,
		`{"name":"x","command":["sleep","1"],"stop_timeout":"1e400h"}`,
		`{"name":"Web","command":[""]}`,
		`null`,
		``,
		"{\"name\":\"x\",\"command\":[\"a\\u0000b\",\"\xff\"]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var spec state.Spec
		err := decodeBounded(body, &spec)
		checkDecodeErr(t, body, err)
		if err != nil {
			return
		}
		var again state.Spec
		reencode(t, spec, &again)
		if !again.Equal(spec) {
			t.Fatalf("re-encoded spec differs:\n was %+v\n now %+v", spec, again)
		}

		n := spec.Clone()
		n.Normalize()
		verr := n.Validate()
		if rerr := spec.Validate(); fmt.Sprint(rerr) != fmt.Sprint(verr) {
			t.Fatalf("Validate before Normalize says %v, after says %v", rerr, verr)
		}
		if verr != nil {
			var fe *state.FieldError
			if !errors.As(verr, &fe) || fe.Field == "" {
				t.Fatalf("Validate error %v names no field", verr)
			}
			checkClientErr(t, "validate", fmt.Errorf("deploy: %w", verr))
			return
		}
		twice := n.Clone()
		twice.Normalize()
		if !reflect.DeepEqual(twice, n) {
			t.Fatalf("Normalize is not idempotent:\n once  %+v\n twice %+v", n, twice)
		}
		ev, err := state.NewEvent(n.Tenant, n.Name, state.Deployed{Spec: n, Generation: 1})
		if err != nil {
			t.Fatalf("a valid spec makes no event: %v", err)
		}
		p, err := state.Decode(eventstore.Envelope{Pos: 1, Type: ev.Type, Tenant: ev.Tenant, Subject: ev.Subject, Data: ev.Data})
		if err != nil {
			t.Fatalf("the stored event does not decode: %v\n%s", err, ev.Data)
		}
		if d, ok := p.(state.Deployed); !ok || !reflect.DeepEqual(d.Spec, n) {
			t.Fatalf("the log reads back another spec:\n stored %+v\n read   %+v", n, p)
		}
	})
}

// FuzzApplyBody fuzzes POST /v1/apply. The handler decodes its body
// itself, with a larger bound and more checks, so the fuzzer runs the real
// handler, against a closed runtime, which refuses at once whatever
// decoded: the handler must answer 400 or that 503, and take nothing that
// the server's decoder refuses. Then it validates the request as a dry
// run, which writes nothing: with [solo.Runtime.Apply], and through the
// handler, which must answer as that validation did.
func FuzzApplyBody(f *testing.F) {
	for _, s := range []string{
		`{"services":[{"name":"web","command":["python3","-m","http.server","8080"],"env":{"PORT":"8080"}},{"tenant":"b","name":"api","command":["./api","--port","9090"],"restart":"never"}],"prune":true,"dry_run":true}`,
		`{"services":[{"name":"web","command":["sleep","3600"]}],"dry_run":true}`,
		`{"services":[{"name":"web","command":["sleep","1"]},{"name":"web","command":["sleep","2"]}],"dry_run":true}`,
		`{"services":[{"name":"job","kind":"not-registered"}],"dry_run":true}`,
		`{"services":[{"name":"web","command":["sleep","1"]}]}`,
		`{"services":[],"prune":true,"dry_run":true}`,
		`{"services":null}`,
		`{"services":[],"prun":true}`,
		`{"services":[]} x`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	open := fuzzRuntime(f)
	closed := fuzzRuntime(f)
	if err := closed.Close(ctx); err != nil {
		f.Fatal(err)
	}
	onOpen, onClosed := New(open, Options{}), New(closed, Options{})
	decoder := &Server{opts: Options{MaxBodyBytes: DefaultMaxApplyBytes}} // the apply handler's bound

	f.Fuzz(func(t *testing.T, body []byte) {
		// The handler may refuse more than the server's decoder (a key
		// given twice, say), never less.
		status, herr := serveApply(onClosed, body)
		var req solo.ApplyRequest
		err := decodeWith(decoder, body, &req)
		switch {
		case errors.Is(herr, solo.ErrClosed):
			if err != nil {
				t.Fatalf("the apply handler took a body that the server's decoder refuses: %v", err)
			}
		case status == http.StatusBadRequest:
			if err != nil {
				checkClientErr(t, "decode", err)
			}
			return
		default:
			t.Fatalf("the apply handler answered %d %v; want 400, or the closed runtime's 503 once decoded", status, herr)
		}

		var again solo.ApplyRequest
		reencode(t, req, &again)
		if again.Prune != req.Prune || again.DryRun != req.DryRun || len(again.Services) != len(req.Services) {
			t.Fatalf("re-encoded request differs:\n was %+v\n now %+v", req, again)
		}
		for i := range req.Services {
			if !again.Services[i].Equal(req.Services[i]) {
				t.Fatalf("re-encoded services[%d] differs:\n was %+v\n now %+v", i, req.Services[i], again.Services[i])
			}
		}

		// Validate as a dry run: with the runtime, and through the
		// handler, which must answer 200 or 400, as the runtime decided.
		dry := req
		dry.DryRun = true
		dryBody, err := json.Marshal(dry)
		if err != nil {
			t.Fatal(err)
		}
		status, herr = serveApply(onOpen, dryBody)
		plan, verr := open.Apply(ctx, dry)
		if status != http.StatusOK && status != http.StatusBadRequest {
			t.Fatalf("a dry run of %s answered %d: %v; bad input is the caller's error", dryBody, status, herr)
		}
		if (verr == nil) != (status == http.StatusOK) {
			t.Fatalf("a dry run answered %d %v; the runtime said %v", status, herr, verr)
		}
		var ee *solo.ApplyEntryError
		if errors.As(verr, &ee) {
			if ee.Index < 0 || ee.Index >= len(req.Services) || !strings.HasPrefix(ee.Field(), fmt.Sprintf("services[%d]", ee.Index)) {
				t.Fatalf("entry error %v points at index %d, field %q, of %d entries", verr, ee.Index, ee.Field(), len(req.Services))
			}
		}
		if verr != nil {
			return
		}
		if len(plan.Items) != len(req.Services) {
			t.Fatalf("a plan on an empty runtime has %d items for %d services", len(plan.Items), len(req.Services))
		}
		for i, s := range req.Services {
			s = s.Clone()
			s.Normalize()
			if err := s.Validate(); err != nil {
				t.Fatalf("apply accepted services[%d], which does not validate: %v", i, err)
			}
			if it := plan.Items[i]; it.Action != solo.ApplyCreate || it.Tenant != s.Tenant || it.Name != s.Name {
				t.Fatalf("plan item %d is %+v for %s", i, it, s.Key())
			}
		}
	})
}

// serveApply runs the apply handler on body as the local admin, and
// returns the status it answered (or would: an error is written by the
// caller) and its error.
func serveApply(s *Server, body []byte) (int, error) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/v1/apply", bytes.NewReader(body))
	r = r.WithContext(withPrincipal(r.Context(), Principal{Actor: LocalActor}))
	if err := s.apply(w, r); err != nil {
		status, _ := classify(err)
		return status, err
	}
	return w.Code, nil
}

// fuzzRuntime opens a runtime with nothing deployed on a temp dir.
func fuzzRuntime(f *testing.F) *solo.Runtime {
	f.Helper()
	rt, err := solo.Open(context.Background(), solo.Options{DataDir: f.TempDir(), Registry: solo.NewRegistry()})
	if err != nil {
		f.Fatalf("open runtime: %v", err)
	}
	f.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

// FuzzSubmitBody fuzzes POST /v1/sessions/{tenant}/{name}/tasks: the body
// decoder, then the task_submitted event the session manager appends,
// whose check is the one rule on task kinds and labels.
func FuzzSubmitBody(f *testing.F) {
	for _, s := range []string{
		`{"code":"import math\nprint(math.pi)\n","retryable":true}`,
		`{"kind":"checkpoint","label":"before-train"}`,
		`{"kind":"restore","label":"before-train"}`,
		`{"kind":"restore","label":"../../etc/passwd"}`,
		`{"kind":"checkpoint"}`,
		`{"kind":"reboot"}`,
		`{"code":"x = \"\u2028\"","label":"ignored"}`,
		`{"code":1}`,
		`{"code":"1","extra":true}`,
		"{\"code\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req wire.SubmitRequest
		err := decodeBounded(body, &req)
		checkDecodeErr(t, body, err)
		if err != nil {
			return
		}
		var again wire.SubmitRequest
		reencode(t, req, &again)
		if again != req {
			t.Fatalf("re-encoded request differs:\n was %+v\n now %+v", req, again)
		}

		sub := state.TaskSubmitted{ID: "01JNCZ2Z8M4Q6X0R3T5V7W9Y1A", Kind: req.Kind, Code: req.Code, Label: req.Label, Retryable: req.Retryable}
		ev, err := state.NewEvent(state.DefaultTenant, "nb", sub)
		known := req.Kind == state.TaskExec || req.Kind == state.TaskCheckpoint || req.Kind == state.TaskRestore
		labelOK := req.Kind == state.TaskExec || state.ValidName(req.Label) == nil
		if (err == nil) != (known && labelOK) {
			t.Fatalf("task %+v: the event check says %v; the handler knows the kind: %v, the label is valid: %v", req, err, known, labelOK)
		}
		if err != nil {
			return
		}
		p, err := state.Decode(eventstore.Envelope{Pos: 1, Type: ev.Type, Tenant: ev.Tenant, Subject: ev.Subject, Data: ev.Data})
		if err != nil {
			t.Fatalf("the stored event does not decode: %v\n%s", err, ev.Data)
		}
		if got, ok := p.(state.TaskSubmitted); !ok || got != sub {
			t.Fatalf("the log reads back another task:\n stored %+v\n read   %+v", sub, p)
		}
	})
}

// FuzzGrantTokenBody fuzzes POST /v1/tokens as the local admin: the body
// decoder, the handler's scope parsing, then [capability.Store.Grant]'s
// checks on a real store. A granted token must authenticate as what was
// asked for. The store's clock then jumps past the token's expiry and a
// sweep deletes it, so that the store stays empty however long the run.
func FuzzGrantTokenBody(f *testing.F) {
	for _, s := range []string{
		`{"scopes":["read","logs"],"ttl":"12h"}`,
		`{"tenant":"b","scopes":["deploy","kill"],"ttl":3600000000000,"services":"web-*"}`,
		`{"scopes":["admin"]}`,
		`{"scopes":[]}`,
		`{"scopes":["Read"]}`,
		`{"scopes":["read"],"ttl":"-1s"}`,
		`{"scopes":["read"],"ttl":"9999h"}`,
		`{"scopes":["read"],"services":"[a-"}`,
		`{"tenant":"B","scopes":["read"]}`,
		`{"scopes":"read"}`,
		`{"scopes":["read"],"ttl":"12h","expires":"never"}`,
	} {
		f.Add([]byte(s))
	}
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	var now atomic.Int64
	now.Store(start)
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	// NoSync: the fuzzer grants thousands of tokens; durability is the
	// store's own tests' business.
	db, err := bbolt.Open(filepath.Join(f.TempDir(), "tokens.db"), 0o600, &bbolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	store, err := capability.Open(context.Background(), db, &capability.Options{Now: clock})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })

	f.Fuzz(func(t *testing.T, body []byte) {
		var req wire.TokenRequest
		err := decodeBounded(body, &req)
		checkDecodeErr(t, body, err)
		if err != nil {
			return
		}
		var again wire.TokenRequest
		reencode(t, req, &again)
		if !reflect.DeepEqual(again, req) {
			t.Fatalf("re-encoded request differs:\n was %+v\n now %+v", req, again)
		}

		// As grantToken does for the local admin.
		tenant := req.Tenant
		if tenant == "" {
			tenant = state.DefaultTenant
		}
		scopes := make([]capability.Scope, 0, len(req.Scopes))
		for _, v := range req.Scopes {
			sc, err := capability.ParseScope(v)
			if err != nil {
				checkClientErr(t, "scopes", &fieldError{Field: "scopes", Err: fmt.Errorf("%w: %w", errBadRequest, err)})
				return
			}
			scopes = append(scopes, sc)
		}
		tok, plaintext, err := store.Grant(context.Background(), capability.GrantRequest{
			Tenant: tenant, Scopes: scopes, TTL: req.TTL.Std(), Services: req.Services, Actor: LocalActor,
		})
		if err != nil {
			// grantToken answers 400 for ErrInvalid, 500 for anything else.
			if !errors.Is(err, capability.ErrInvalid) {
				t.Fatalf("grant of %+v: %v, want ErrInvalid", req, err)
			}
			return
		}
		got, err := store.Authenticate(plaintext)
		if err != nil {
			t.Fatalf("a granted token does not authenticate: %v", err)
		}
		ttl := req.TTL.Std()
		if ttl == 0 {
			ttl = capability.DefaultTTL
		}
		if got.ID != tok.ID || got.Tenant != tenant || got.Services != req.Services || got.ExpiresAt.Sub(got.CreatedAt) != ttl {
			t.Fatalf("granted %+v for %+v, authenticates as %+v", tok, req, got)
		}
		for _, sc := range scopes {
			if !got.Has(sc) {
				t.Fatalf("granted %v, the token lacks %s", req.Scopes, sc)
			}
		}

		now.Store(start + int64(capability.DefaultMaxTTL+time.Second))
		defer now.Store(start)
		if n, err := store.Sweep(context.Background()); err != nil || n != 1 {
			t.Fatalf("sweep after expiry deleted %d tokens, %v; want 1", n, err)
		}
	})
}
