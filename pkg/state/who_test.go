package state

import (
	"errors"
	"strings"
	"testing"
)

func TestSpec_ValidateWho(t *testing.T) {
	base := func() Spec { return Spec{Name: "web", Command: []string{"/bin/true"}} }
	cases := []struct {
		name  string
		mut   func(*Spec)
		field string // "" means valid
	}{
		{"every field", func(s *Spec) {
			s.User, s.Group, s.Groups, s.Umask, s.EnvFile = "postgres", "ssl-cert", []string{"adm", "1001"}, "0027", []string{"/etc/app.env", "/run/x.env"}
		}, ""},
		{"numeric user", func(s *Spec) { s.User = "65534" }, ""},
		{"user with colon", func(s *Spec) { s.User = "a:b" }, "user"},
		{"user with blank", func(s *Spec) { s.User = "a b" }, "user"},
		{"user with slash", func(s *Spec) { s.User = "../x" }, "user"},
		{"user too long", func(s *Spec) { s.User = strings.Repeat("u", MaxAccountName+1) }, "user"},
		{"group with NUL", func(s *Spec) { s.Group = "g\x00" }, "group"},
		{"groups empty entry", func(s *Spec) { s.Groups = []string{"adm", ""} }, "groups"},
		{"groups too many", func(s *Spec) { s.Groups = make([]string, MaxGroups+1) }, "groups"},
		{"umask 3 digits", func(s *Spec) { s.Umask = "027" }, ""},
		{"umask 0o", func(s *Spec) { s.Umask = "0o077" }, ""},
		{"umask not octal", func(s *Spec) { s.Umask = "0829" }, "umask"},
		{"umask too big", func(s *Spec) { s.Umask = "1777" }, "umask"},
		{"umask words", func(s *Spec) { s.Umask = "u=rwx" }, "umask"},
		{"env_file relative", func(s *Spec) { s.EnvFile = []string{"app.env"} }, "env_file"},
		{"env_file empty", func(s *Spec) { s.EnvFile = []string{""} }, "env_file"},
		{"env_file too many", func(s *Spec) { s.EnvFile = make([]string, MaxEnvFiles+1) }, "env_file"},
		{"user on a kind", func(s *Spec) { s.Command, s.Kind, s.User = nil, "ticker", "nobody" }, "user"},
		{"env_file on a kind", func(s *Spec) { s.Command, s.Kind, s.EnvFile = nil, "ticker", []string{"/a"} }, "env_file"},
		{"umask on a kind", func(s *Spec) { s.Command, s.Kind, s.Umask = nil, "ticker", "022" }, "umask"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.mut(&s)
			err := s.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("Validate = %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
}

func TestSpec_NormalizeWho(t *testing.T) {
	s := Spec{Name: "web", Command: []string{"x"}, Umask: "27", Groups: []string{}, EnvFile: []string{}}
	s.Normalize()
	if s.Umask != "0027" || s.Groups != nil || s.EnvFile != nil {
		t.Fatalf("Normalize: umask %q groups %#v env_file %#v", s.Umask, s.Groups, s.EnvFile)
	}
	a := Spec{Name: "web", Command: []string{"x"}, Umask: "0o077"}
	b := Spec{Name: "web", Command: []string{"x"}, Umask: "077"}
	if !a.Equal(b) {
		t.Fatal("umask 0o077 and 077 are not Equal")
	}
	c := a.Clone()
	c.EnvFile = []string{"/a"}
	if a.Equal(c) {
		t.Fatal("env_file is ignored by Equal")
	}
	d := Spec{Groups: []string{"a"}, EnvFile: []string{"/b"}}
	e := d.Clone()
	e.Groups[0], e.EnvFile[0] = "z", "/z"
	if d.Groups[0] != "a" || d.EnvFile[0] != "/b" {
		t.Fatal("Clone shares groups or env_file")
	}
}

func TestParseUmask(t *testing.T) {
	for in, want := range map[string]uint32{"0": 0, "022": 0o22, "0027": 0o27, "0o777": 0o777, "777": 0o777} {
		if got, err := ParseUmask(in); err != nil || got != want {
			t.Errorf("ParseUmask(%q) = %o, %v; want %o", in, got, err, want)
		}
	}
	for _, in := range []string{"", "8", "-1", "01000", "00777x", "0x1f", "12345"} {
		if _, err := ParseUmask(in); err == nil {
			t.Errorf("ParseUmask(%q) accepted", in)
		}
	}
}
