package envfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxBytes is the largest env file [ReadFile] and [Parse] read.
const MaxBytes = 1 << 20

// Var is one assignment of an env file.
type Var struct {
	Key, Value string
	Line       int // where the assignment begins, for errors about it
}

// Error is a problem with an env file. It names the file and, for a
// syntax error, the line; it never quotes the file's text, which may be a
// secret.
type Error struct {
	File    string
	Line    int // 0 when the problem is not a line's (the file cannot be read)
	Problem string
	Err     error // the underlying error (reading the file), if any
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("env file %s: line %d: %s", e.File, e.Line, e.Problem)
	case e.Err != nil:
		return fmt.Sprintf("env file %s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("env file %s: %s", e.File, e.Problem)
}

func (e *Error) Unwrap() error { return e.Err }

// ReadFile reads and parses the env file at path. A file that cannot be
// read gives an [*Error] wrapping the [*os.PathError] (so
// errors.Is(err, fs.ErrNotExist) tells a missing file).
func ReadFile(path string) ([]Var, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Err: unwrapPath(err)}
	}
	defer f.Close()
	return Parse(f, path)
}

// unwrapPath drops the path from an *os.PathError's message (the Error
// names the file already) but keeps it for errors.Is.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return &opError{op: pe.Op, err: pe.Err}
	}
	return err
}

type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// Parse reads an env file from r; name is what errors call it. See the
// package doc for the syntax.
func Parse(r io.Reader, name string) ([]Var, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, &Error{File: name, Err: err}
	}
	if len(data) > MaxBytes {
		return nil, &Error{File: name, Problem: fmt.Sprintf("is over %d bytes", MaxBytes)}
	}
	return parse(string(data), name)
}

type parseState int

const (
	preKey parseState = iota
	inKey
	preValue
	inValue
	valueEscape
	singleQuote
	doubleQuote
	doubleQuoteEscape
	comment
)

func parse(s, name string) ([]Var, error) {
	var (
		vars      []Var
		st        = preKey
		key       strings.Builder
		val       strings.Builder
		line      = 1 // the current line
		startLine = 1 // where the current assignment began
		quoteLine = 0 // where the open quote began
		keep      = 0 // val's length up to its last character that is not trailing blank
	)
	fail := func(at int, problem string) ([]Var, error) {
		return nil, &Error{File: name, Line: at, Problem: problem}
	}
	push := func() error {
		k := strings.TrimRight(key.String(), " \t\r")
		if !validKey(k) {
			return &Error{File: name, Line: startLine, Problem: "invalid variable name; want ^[A-Za-z_][A-Za-z0-9_]*$"}
		}
		vars = append(vars, Var{Key: k, Value: val.String()[:keep], Line: startLine})
		key.Reset()
		val.Reset()
		keep = 0
		return nil
	}
	appendVal := func(c byte, significant bool) {
		val.WriteByte(c)
		if significant {
			keep = val.Len()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 {
			return fail(line, "contains a NUL byte")
		}
		switch st {
		case preKey:
			switch {
			case c == '#' || c == ';':
				st = comment
			case c == '\n':
			case isBlank(c):
			case c == '=':
				st, startLine = preValue, line // an empty key: push refuses it
			default:
				st, startLine = inKey, line
				key.WriteByte(c)
			}
		case inKey:
			switch {
			case c == '=':
				st = preValue
			case c == '\n':
				return fail(startLine, "not an assignment; want KEY=VALUE")
			case isBlank(c) && key.String() == "export":
				key.Reset()
				st = preKey // "export KEY=..."; the key follows
			default:
				key.WriteByte(c)
			}
		case preValue:
			switch {
			case c == '\n':
				if err := push(); err != nil {
					return nil, err
				}
				st = preKey
			case c == '\'':
				st, quoteLine = singleQuote, line
			case c == '"':
				st, quoteLine = doubleQuote, line
			case c == '\\':
				st = valueEscape
			case isBlank(c):
			default:
				st = inValue
				appendVal(c, true)
			}
		case inValue:
			switch {
			case c == '\n':
				if err := push(); err != nil {
					return nil, err
				}
				st = preKey
			case c == '\\':
				st = valueEscape
			default:
				appendVal(c, !isBlank(c))
			}
		case valueEscape:
			st = inValue
			if c != '\n' {
				appendVal(c, true)
			}
		case singleQuote:
			if c == '\'' {
				st = preValue
				keep = val.Len()
			} else {
				appendVal(c, true)
			}
		case doubleQuote:
			switch c {
			case '"':
				st = preValue
				keep = val.Len()
			case '\\':
				st = doubleQuoteEscape
			default:
				appendVal(c, true)
			}
		case doubleQuoteEscape:
			st = doubleQuote
			switch c {
			case '"', '\\', '`', '$':
				appendVal(c, true)
			case '\n':
			default:
				appendVal('\\', true)
				appendVal(c, true)
			}
		case comment:
			if c == '\n' {
				st = preKey
			}
		}
		if c == '\n' {
			line++
		}
	}
	switch st {
	case inKey:
		return fail(startLine, "not an assignment; want KEY=VALUE")
	case singleQuote, doubleQuote, doubleQuoteEscape:
		return fail(quoteLine, "unterminated quote")
	case preValue, inValue, valueEscape:
		if err := push(); err != nil {
			return nil, err
		}
	}
	return vars, nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}
