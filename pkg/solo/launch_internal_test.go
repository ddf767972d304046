package solo

import (
	"slices"
	"strings"
	"testing"

	"github.com/solo-rt/solo/pkg/envfile"
	"github.com/solo-rt/solo/pkg/state"
	"github.com/solo-rt/solo/supervisor"
)

// TestMayRunAs: a daemon not running as root runs services only as
// itself, with its own group and groups it is in; root may do anything.
func TestMayRunAs(t *testing.T) {
	self := supervisor.Credential{UID: 1000, GID: 1000, Groups: []uint32{1000, 4}} // 4 is adm
	acct := func(uid, gid uint32) supervisor.Account {
		return supervisor.Account{Credential: supervisor.Credential{UID: uid, GID: gid}}
	}
	cases := []struct {
		name  string
		self  supervisor.Credential
		acct  supervisor.Account
		spec  state.Spec
		field string // "" means allowed
	}{
		{"root, another user", supervisor.Credential{}, acct(65534, 65534), state.Spec{User: "nobody", Groups: []string{"users"}}, ""},
		{"itself", self, acct(1000, 1000), state.Spec{User: "1000"}, ""},
		{"another user", self, acct(65534, 65534), state.Spec{User: "nobody"}, "user"},
		{"a group it is not", self, acct(1000, 4), state.Spec{User: "1000", Group: "adm"}, "group"},
		{"groups it is in", self, acct(1000, 1000), state.Spec{Groups: []string{"adm"}}, ""},
		{"a group it is not in", self, acct(1000, 1000), state.Spec{Groups: []string{"users"}}, "groups"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := mayRunAs(tc.acct, tc.spec, tc.self)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("mayRunAs: %v", err)
				}
				return
			}
			le, ok := err.(*launchError)
			if !ok || le.field != tc.field || !strings.Contains(err.Error(), "not root") {
				t.Fatalf("mayRunAs = %v, want a refusal of %s that says the daemon is not root", err, tc.field)
			}
		})
	}
}

// TestLaunchEnv: the layers of a child's environment, each replacing a key
// of the one before: the daemon's inherited variables, the user's
// passwd entry, the env files in order, the spec's env.
func TestLaunchEnv(t *testing.T) {
	t.Setenv("PATH", "/daemon/bin")
	t.Setenv("HOME", "/root")
	t.Setenv("SOLO_TOKEN", "never-passed")
	acct := &supervisor.Account{Name: "pg", Home: "/var/lib/pg", Shell: "/bin/bash"}
	files := []envfile.Var{{Key: "PATH", Value: "/file/bin"}, {Key: "A", Value: "1"}, {Key: "A", Value: "2"}, {Key: "USER", Value: "fromfile"}}
	env := launchEnv(map[string]string{"LOGNAME": "spec", "B": "3"}, acct, files, nil)
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := got[k]; dup {
			t.Fatalf("%s set twice in %q", k, env)
		}
		got[k] = v
	}
	want := map[string]string{"PATH": "/file/bin", "HOME": "/var/lib/pg", "USER": "fromfile", "LOGNAME": "spec", "SHELL": "/bin/bash", "A": "2", "B": "3"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (env %q)", k, got[k], v, env)
		}
	}
	if _, ok := got["SOLO_TOKEN"]; ok {
		t.Error("a daemon variable that is not inherited reached the child")
	}
	// Without an account or files it is the fixed environment of childEnv.
	if plain := launchEnv(map[string]string{"B": "3"}, nil, nil, nil); !slices.Equal(plain, childEnv(map[string]string{"B": "3"})) {
		t.Errorf("launchEnv without layers = %q", plain)
	}
}
