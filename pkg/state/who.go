package state

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Limits of the who-and-where fields that [Spec.Validate] enforces.
const (
	MaxAccountName = 256 // bytes in user, group and each of groups
	MaxGroups      = 64  // entries in groups
	MaxEnvFiles    = 16  // entries in env_file
)

// ParseUmask reads an umask in octal ("027", "0027", "0o027"): 0 to 0777.
func ParseUmask(s string) (uint32, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	if t == "" || len(t) > 4 {
		return 0, fmt.Errorf("%q is not an octal umask such as 0027", s)
	}
	n, err := strconv.ParseUint(t, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not an octal umask such as 0027", s)
	}
	if n > 0o777 {
		return 0, fmt.Errorf("%q is above 0777", s)
	}
	return uint32(n), nil
}

// normalizeWho puts the who-and-where fields in canonical form: empty
// lists nil, umask as four octal digits.
func (s *Spec) normalizeWho() {
	if len(s.Groups) == 0 {
		s.Groups = nil
	}
	if len(s.EnvFile) == 0 {
		s.EnvFile = nil
	}
	if s.Umask != "" {
		if m, err := ParseUmask(s.Umask); err == nil {
			s.Umask = fmt.Sprintf("%04o", m)
		}
	}
}

// whoField names the first who-and-where field that is set, or "".
func (s *Spec) whoField() string {
	switch {
	case s.User != "":
		return "user"
	case s.Group != "":
		return "group"
	case s.Groups != nil:
		return "groups"
	case s.Umask != "":
		return "umask"
	case s.EnvFile != nil:
		return "env_file"
	}
	return ""
}

// validateWho checks the syntax of the who-and-where fields of a
// normalised spec; whether the user exists is the runtime's check.
func (s *Spec) validateWho() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	if s.User != "" {
		if p := accountProblem(s.User); p != "" {
			return bad("user", "%s", p)
		}
	}
	if s.Group != "" {
		if p := accountProblem(s.Group); p != "" {
			return bad("group", "%s", p)
		}
	}
	if len(s.Groups) > MaxGroups {
		return bad("groups", "has %d entries, limit %d", len(s.Groups), MaxGroups)
	}
	for i, g := range s.Groups {
		if g == "" {
			return bad("groups", "entry %d is empty", i)
		}
		if p := accountProblem(g); p != "" {
			return bad("groups", "entry %d: %s", i, p)
		}
	}
	if s.Umask != "" {
		if _, err := ParseUmask(s.Umask); err != nil {
			return bad("umask", "%v", err)
		}
	}
	if len(s.EnvFile) > MaxEnvFiles {
		return bad("env_file", "has %d entries, limit %d", len(s.EnvFile), MaxEnvFiles)
	}
	for i, f := range s.EnvFile {
		switch {
		case f == "":
			return bad("env_file", "entry %d is empty", i)
		case strings.IndexByte(f, 0) >= 0:
			return bad("env_file", "entry %d contains a NUL byte", i)
		case !filepath.IsAbs(f):
			return bad("env_file", "%q is not an absolute path", f)
		}
	}
	return nil
}

// accountProblem says what is wrong with a user or group name (or id), or
// "".
func accountProblem(s string) string {
	if len(s) > MaxAccountName {
		return fmt.Sprintf("is %d bytes, limit %d", len(s), MaxAccountName)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == ':' || c == '/' {
			return fmt.Sprintf("%q has %q at byte %d; a user or group has no blank, control character, ':' or '/'", s, s[i:i+1], i)
		}
	}
	return ""
}
