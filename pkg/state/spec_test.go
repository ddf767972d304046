package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestJSONDepth(t *testing.T) {
	for in, want := range map[string]int{
		`1`: 0, `{}`: 1, `[[1],[2,[3]]]`: 3, `{"a":"[[[{"}`: 1, `["\"["]`: 1, `{"a":{"b":[]}}`: 3,
	} {
		if got := jsonDepth([]byte(in)); got != want {
			t.Errorf("jsonDepth(%s) = %d, want %d", in, got, want)
		}
	}
}

func TestSpec_Validate(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(s *Spec)
		field string // "" means valid
	}{
		{"valid command", func(s *Spec) {}, ""},
		{"valid kind", func(s *Spec) { s.Command = nil; s.Kind = "ticker"; s.Config = json.RawMessage(`{"a":1}`) }, ""},
		{"valid everything", func(s *Spec) {
			s.Tenant = "acme-1"
			s.Env = map[string]string{"PATH": "/bin", "_x1": ""}
			s.Dir = "/srv"
			s.Restart = RestartOnFailure
			zero := 0
			s.MaxRestarts = &zero
			s.RestartWindow = Duration(24 * time.Hour)
			s.StopSignal = "int"
			s.StopTimeout = Duration(time.Millisecond)
			s.MemoryMax, s.CPU, s.PIDsMax = MinMemoryMax, MinCPU, 1
		}, ""},
		{"health http", func(s *Spec) {
			s.Health = &HealthSpec{HTTP: "http://127.0.0.1:8080/healthz", Interval: Duration(time.Second), Timeout: Duration(time.Second), Retries: 2}
		}, ""},
		{"health watchdog with notify", func(s *Spec) {
			s.Ready = &ReadySpec{Notify: true}
			s.Health = &HealthSpec{Watchdog: Duration(time.Second), TCP: "localhost:1"}
		}, ""},
		{"health none", func(s *Spec) { s.Health = &HealthSpec{} }, "health"},
		{"health two probes", func(s *Spec) { s.Health = &HealthSpec{HTTP: "http://a/", TCP: "a:1"} }, "health"},
		{"health bad URL", func(s *Spec) { s.Health = &HealthSpec{HTTP: "ftp://a/"} }, "health.http"},
		{"health port 0", func(s *Spec) { s.Health = &HealthSpec{TCP: "127.0.0.1:0"} }, "health.tcp"},
		{"health empty exec", func(s *Spec) { s.Health = &HealthSpec{Exec: []string{}} }, "health.exec"},
		{"health interval negative", func(s *Spec) { s.Health = &HealthSpec{TCP: "a:1", Interval: -1} }, "health.interval"},
		{"health interval tiny", func(s *Spec) { s.Health = &HealthSpec{TCP: "a:1", Interval: Duration(time.Millisecond)} }, "health.interval"},
		{"health timeout above interval", func(s *Spec) {
			s.Health = &HealthSpec{TCP: "a:1", Interval: Duration(time.Second), Timeout: Duration(2 * time.Second)}
		}, "health.timeout"},
		{"health default timeout above a short interval", func(s *Spec) { s.Health = &HealthSpec{TCP: "a:1", Interval: Duration(time.Second)} }, ""},
		{"health retries negative", func(s *Spec) { s.Health = &HealthSpec{TCP: "a:1", Retries: -1} }, "health.retries"},
		{"health watchdog without notify", func(s *Spec) { s.Health = &HealthSpec{Watchdog: Duration(time.Second)} }, "health.watchdog"},
		{"health on kind", func(s *Spec) { s.Command = nil; s.Kind = "ticker"; s.Health = &HealthSpec{TCP: "a:1"} }, "health"},
		{"name with slash", func(s *Spec) { s.Name = "a/b" }, "name"},
		{"name with control char", func(s *Spec) { s.Name = "web\x01" }, "name"},
		{"name uppercase", func(s *Spec) { s.Name = "Web" }, "name"},
		{"name too long", func(s *Spec) { s.Name = strings.Repeat("a", 64) }, "name"},
		{"name starts with dot", func(s *Spec) { s.Name = ".web" }, "name"},
		{"name empty", func(s *Spec) { s.Name = "" }, "name"},
		{"tenant bad", func(s *Spec) { s.Tenant = "Acme" }, "tenant"},
		{"empty command", func(s *Spec) { s.Command = []string{} }, "command"},
		{"empty argv0", func(s *Spec) { s.Command = []string{"", "x"} }, "command"},
		{"NUL in arg", func(s *Spec) { s.Command = []string{"/bin/echo", "a\x00b"} }, "command"},
		{"too many args", func(s *Spec) { s.Command = make([]string, MaxArgs+1); s.Command[0] = "x" }, "command"},
		{"args too big", func(s *Spec) { s.Command = []string{"x", strings.Repeat("a", MaxArgBytes)} }, "command"},
		{"both command and kind", func(s *Spec) { s.Kind = "ticker" }, "kind"},
		{"bad kind", func(s *Spec) { s.Command = nil; s.Kind = "Ticker" }, "kind"},
		{"config with command", func(s *Spec) { s.Config = json.RawMessage(`{}`) }, "config"},
		{"config not JSON", func(s *Spec) { s.Command = nil; s.Kind = "k"; s.Config = json.RawMessage(`{`) }, "config"},
		{"config too big", func(s *Spec) {
			s.Command = nil
			s.Kind = "k"
			s.Config = json.RawMessage(`"` + strings.Repeat("a", MaxConfigBytes) + `"`)
		}, "config"},
		{"config nests too deep", func(s *Spec) {
			s.Command = nil
			s.Kind = "k"
			s.Config = json.RawMessage(strings.Repeat("[", MaxConfigDepth+1) + strings.Repeat("]", MaxConfigDepth+1))
		}, "config"},
		{"env with kind", func(s *Spec) { s.Command = nil; s.Kind = "k"; s.Env = map[string]string{"A": "b"} }, "env"},
		{"dir with kind", func(s *Spec) { s.Command = nil; s.Kind = "k"; s.Dir = "/" }, "dir"},
		{"bad env key", func(s *Spec) { s.Env = map[string]string{"1A": "x"} }, "env"},
		{"env key with =", func(s *Spec) { s.Env = map[string]string{"A=B": "x"} }, "env"},
		{"SOLO_SERVICE in env", func(s *Spec) { s.Env = map[string]string{ReservedEnv: "x"} }, "env"},
		{"NUL in env value", func(s *Spec) { s.Env = map[string]string{"A": "x\x00"} }, "env"},
		{"env too big", func(s *Spec) { s.Env = map[string]string{"A": strings.Repeat("a", MaxEnvBytes)} }, "env"},
		{"relative dir", func(s *Spec) { s.Dir = "srv/app" }, "dir"},
		{"unknown signal", func(s *Spec) { s.StopSignal = "SIGFOO" }, "stop_signal"},
		{"unknown restart policy", func(s *Spec) { s.Restart = "sometimes" }, "restart"},
		{"negative max_restarts", func(s *Spec) { n := -1; s.MaxRestarts = &n }, "max_restarts"},
		{"negative restart_window", func(s *Spec) { s.RestartWindow = -1 }, "restart_window"},
		{"restart_window over 24h", func(s *Spec) { s.RestartWindow = MaxDuration + 1 }, "restart_window"},
		{"memory_max under 1MiB", func(s *Spec) { s.MemoryMax = MinMemoryMax - 1 }, "memory_max"},
		{"negative memory_max", func(s *Spec) { s.MemoryMax = -1 }, "memory_max"},
		{"negative cpu", func(s *Spec) { s.CPU = -0.5 }, "cpu"},
		{"cpu too small", func(s *Spec) { s.CPU = MinCPU / 2 }, "cpu"},
		{"cpu too big", func(s *Spec) { s.CPU = MaxCPU + 1 }, "cpu"},
		{"cpu infinite", func(s *Spec) { s.CPU = math.Inf(1) }, "cpu"},
		{"negative pids_max", func(s *Spec) { s.PIDsMax = -1 }, "pids_max"},
		{"limits with kind", func(s *Spec) { s.Command = nil; s.Kind = "k"; s.PIDsMax = 10 }, "pids_max"},
		{"negative stop_timeout", func(s *Spec) { s.StopTimeout = Duration(-time.Second) }, "stop_timeout"},
		{"nodes", func(s *Spec) { s.Nodes = []string{"n1", "node-2.dc"} }, ""},
		{"nodes bad name", func(s *Spec) { s.Nodes = []string{"n1", "Bad Node"} }, "nodes"},
		{"nodes empty name", func(s *Spec) { s.Nodes = []string{""} }, "nodes"},
		{"nodes twice", func(s *Spec) { s.Nodes = []string{"n1", "n1"} }, "nodes"},
		{"nodes too many", func(s *Spec) {
			for i := range MaxNodes + 1 {
				s.Nodes = append(s.Nodes, fmt.Sprintf("n%d", i))
			}
		}, "nodes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec("web")
			tc.edit(&s)
			before := s.Clone()
			err := s.Validate()
			require.Equal(t, before, s, "Validate must not change the spec")
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidSpec)
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "want *FieldError, got %T", err)
			require.Equal(t, tc.field, fe.Field, "error: %v", err)
			require.Contains(t, err.Error(), tc.field)
		})
	}
}

func TestSpec_Normalize(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		s := Spec{Name: "web", Command: []string{"/bin/true"}, Env: map[string]string{}, Config: json.RawMessage("null")}
		s.Normalize()
		five := 5
		require.Equal(t, Spec{
			Tenant:        "default",
			Name:          "web",
			Command:       []string{"/bin/true"},
			Restart:       RestartAlways,
			MaxRestarts:   &five,
			RestartWindow: Duration(60 * time.Second),
			StopSignal:    "SIGTERM",
			StopTimeout:   Duration(10 * time.Second),
		}, s)
		require.Equal(t, syscall.SIGTERM, s.Signal())
		require.Equal(t, 5, s.RestartLimit())
	})
	t.Run("explicit values stay", func(t *testing.T) {
		zero := 0
		s := Spec{Tenant: "t", Name: "w", Kind: "k", Config: json.RawMessage(` { "a" : "<b>" } `),
			Restart: RestartNever, MaxRestarts: &zero, RestartWindow: 1, StopSignal: "int", StopTimeout: 2}
		s.Normalize()
		require.Equal(t, "t", s.Tenant)
		require.Equal(t, `{"a":"\u003cb\u003e"}`, string(s.Config))
		require.Equal(t, RestartNever, s.Restart)
		require.Equal(t, 0, s.RestartLimit())
		require.Equal(t, Duration(1), s.RestartWindow)
		require.Equal(t, "SIGINT", s.StopSignal)
		require.Equal(t, syscall.SIGINT, s.Signal())
	})
	t.Run("idempotent", func(t *testing.T) {
		s := testSpec("web")
		s.Normalize()
		again := s.Clone()
		again.Normalize()
		require.Equal(t, s, again)
	})
}

func TestSpec_Equal(t *testing.T) {
	a := testSpec("web")
	b := testSpec("web")
	b.Tenant = DefaultTenant
	b.StopSignal = "term"
	b.Env = map[string]string{}
	require.True(t, a.Equal(b), "defaults and canonical forms compare equal")
	b.Env = map[string]string{"A": "1"}
	require.False(t, a.Equal(b))
	c := testSpec("web")
	c.Command = append(c.Command, "x")
	require.False(t, a.Equal(c))
}

func TestDuration_UnmarshalJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Duration
		err  bool
	}{
		{`"10s"`, Duration(10 * time.Second), false},
		{`"1h2m3.5s"`, Duration(time.Hour + 2*time.Minute + 3500*time.Millisecond), false},
		{`1500000000`, Duration(1500 * time.Millisecond), false},
		{`"1500"`, Duration(1500), false},
		{`1.5`, 0, true},
		{`"ten"`, 0, true},
		{`{}`, 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tc.in), &d)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, d)
			b, err := json.Marshal(d)
			require.NoError(t, err)
			var back Duration
			require.NoError(t, json.Unmarshal(b, &back))
			require.Equal(t, d, back)
		})
	}
}

func TestSignalName(t *testing.T) {
	require.Equal(t, "SIGKILL", SignalName(syscall.SIGKILL))
	require.Equal(t, "SIGSEGV", SignalName(syscall.SIGSEGV))
	require.Empty(t, SignalName(0), "no signal has no name: an exit by a code records none")
	require.Equal(t, "SIG77", SignalName(syscall.Signal(77)))
	for name, sig := range signals {
		got, err := ParseSignal(name)
		require.NoError(t, err)
		require.Equal(t, sig, got)
		require.Equal(t, name, SignalName(sig))
	}
}

func TestRestartPolicy_ShouldRestart(t *testing.T) {
	for _, tc := range []struct {
		p       RestartPolicy
		code    int
		sig     string
		unknown bool
		want    bool
	}{
		{RestartAlways, 0, "", false, true},
		{RestartNever, 1, "", false, false},
		{RestartOnFailure, 0, "", false, false},
		{RestartOnFailure, 1, "", false, true},
		{RestartOnFailure, 0, "SIGKILL", false, true},
		{RestartOnFailure, 0, "", true, true},
		{"", 0, "", false, true},
	} {
		require.Equal(t, tc.want, tc.p.ShouldRestart(tc.code, tc.sig, tc.unknown), "%+v", tc)
	}
}

var nameRE = regexp.MustCompile(NamePattern)

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"", "web", "a/b", "Web", ".x", "x.", strings.Repeat("a", 63), strings.Repeat("a", 64), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidName(s) == nil, nameRE.MatchString(s); got != want {
			t.Fatalf("ValidName(%q) ok=%v, regexp says %v", s, got, want)
		}
	})
}
