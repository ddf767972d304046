package envfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Var
	}{
		{"empty", "", nil},
		{"blank and comments", "\n  \n# A=1\n  ; B=2\n\t#C=3\n", nil},
		{"plain", "A=1\nB=two\n", []Var{{"A", "1", 0}, {"B", "two", 0}}},
		{"no final newline", "A=1", []Var{{"A", "1", 0}}},
		{"empty value", "A=\nB=", []Var{{"A", "", 0}, {"B", "", 0}}},
		{"value with =", "URL=postgres://u@h/db?sslmode=disable&x=1", []Var{{"URL", "postgres://u@h/db?sslmode=disable&x=1", 0}}},
		{"blanks trimmed", "  A  =   one two  \t\n", []Var{{"A", "one two", 0}}},
		{"crlf", "A=1\r\nB=2\r\n", []Var{{"A", "1", 0}, {"B", "2", 0}}},
		{"export prefix", "export A=1\nexport\tB=2\n", []Var{{"A", "1", 0}, {"B", "2", 0}}},
		{"key named export", "export=1", []Var{{"export", "1", 0}}},
		{"hash inside value", "A=x#y # z", []Var{{"A", "x#y # z", 0}}},
		{"single quotes literal", `A='a "b" \n $c  '`, []Var{{"A", `a "b" \n $c  `, 0}}},
		{"double quotes", `A="a 'b' \"c\" \\ \$d \` + "`" + ` \n"`, []Var{{"A", `a 'b' "c" \ $d ` + "`" + ` \n`, 0}}},
		{"double quote keeps blanks", `A="  x  "`, []Var{{"A", "  x  ", 0}}},
		{"multi-line quote", "A=\"one\ntwo\"\nB='x\ny'", []Var{{"A", "one\ntwo", 0}, {"B", "x\ny", 0}}},
		{"double quote line join", "A=\"one \\\ntwo\"", []Var{{"A", "one two", 0}}},
		{"unquoted escape", `A=a\ b\#c\\`, []Var{{"A", `a b#c\`, 0}}},
		{"unquoted line join", "A=one\\\ntwo\nB=3", []Var{{"A", "onetwo", 0}, {"B", "3", 0}}},
		{"adjacent parts", `A="x"'y'z`, []Var{{"A", "xyz", 0}}},
		{"escaped trailing blank kept", `A=x\ `, []Var{{"A", "x ", 0}}},
		{"later wins is the caller's; order kept", "A=1\nA=2", []Var{{"A", "1", 0}, {"A", "2", 0}}},
		{"comment after value line", "A=1\n# secret=no\nB=2", []Var{{"A", "1", 0}, {"B", "2", 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in), "test.env")
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			for i := range got {
				if got[i].Line < 1 {
					t.Fatalf("Parse(%q): var %d has line %d", tt.in, i, got[i].Line)
				}
				got[i].Line = 0
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParse_errors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		problem  string
	}{
		{"no equals", "A=1\nhunter2secret\n", 2, "not an assignment"},
		{"no equals at end", "A=1\n\nhunter2secret", 3, "not an assignment"},
		{"bad key", "A=1\n1A=hunter2secret", 2, "invalid variable name"},
		{"key with blank", "MY KEY=hunter2secret", 1, "invalid variable name"},
		{"empty key", "=hunter2secret", 1, "invalid variable name"},
		{"unterminated double", "A=1\nB=\"hunter2secret\nC=3", 2, "unterminated quote"},
		{"unterminated single", "B='hunter2secret", 1, "unterminated quote"},
		{"nul", "A=1\nB=hunter2\x00secret", 2, "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in), "/etc/app.env")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) error = %v, want an *Error", tt.in, err)
			}
			if e.Line != tt.line || !strings.Contains(e.Problem, tt.problem) {
				t.Fatalf("Parse(%q) = line %d %q, want line %d %q", tt.in, e.Line, e.Problem, tt.line, tt.problem)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "env file /etc/app.env: line ") {
				t.Errorf("error %q does not name the file and line", msg)
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "secret") {
				t.Errorf("error %q quotes the file's text", msg)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.env")
	if err := os.WriteFile(path, []byte("export A='x y'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil || !reflect.DeepEqual(got, []Var{{"A", "x y", 1}}) {
		t.Fatalf("ReadFile = %+v, %v", got, err)
	}

	missing := filepath.Join(dir, "missing.env")
	_, err = ReadFile(missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(missing) error = %v, want fs.ErrNotExist", err)
	}
	if want := "env file " + missing + ": open: no such file or directory"; err.Error() != want {
		t.Fatalf("ReadFile(missing) error = %q, want %q", err, want)
	}

	big := filepath.Join(dir, "big.env")
	if err := os.WriteFile(big, []byte("A="+strings.Repeat("x", MaxBytes)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(big); err == nil || !strings.Contains(err.Error(), "is over") {
		t.Fatalf("ReadFile(big) error = %v, want a size error", err)
	}
}

// FuzzParse: parsing never panics; every key it returns is valid and no
// value holds a NUL; an error never quotes the input; and a line that is a
// comment yields nothing, wherever it is put.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"A=1", "export A='x'\n#c\nB=\"y\\\"z\"", "A=\"x\ny\"", "A=x\\\ny", "; c\nA", "=", "A='"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vars, err := Parse(strings.NewReader(s), "f.env")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if len(s) >= 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q quotes the input", err)
			}
			return
		}
		for _, v := range vars {
			if !validKey(v.Key) || strings.IndexByte(v.Value, 0) >= 0 {
				t.Fatalf("bad var %+v from %q", v, s)
			}
		}
		// The same input with a comment line before it parses the same,
		// and the comment's own assignment never shows.
		if strings.HasSuffix(s, "\\") {
			return // a trailing backslash would join the next line
		}
		withComment := "# FUZZ_COMMENTED=should-not-appear\n" + s
		got, err := Parse(strings.NewReader(withComment), "f.env")
		if err != nil {
			t.Fatalf("Parse with a comment line first: %v (without: ok)", err)
		}
		for _, v := range got {
			if v.Key == "FUZZ_COMMENTED" || strings.Contains(v.Value, "should-not-appear") && !strings.Contains(s, "should-not-appear") {
				t.Fatalf("commented line returned a value: %+v from %q", v, withComment)
			}
		}
		for i := range got {
			got[i].Line-- // one line lower
		}
		if !reflect.DeepEqual(got, vars) {
			t.Fatalf("a comment line first changed the result: %+v vs %+v", got, vars)
		}
	})
}
