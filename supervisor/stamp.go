package supervisor

import (
	"bytes"
	"io"
	"time"
)

// StampLayout is the time at the head of each line of a stamped log: RFC
// 3339 in UTC with milliseconds, then a space.
const StampLayout = "2006-01-02T15:04:05.000Z07:00"

// stampLen is the length of a stamp, its space included.
const stampLen = len("2006-01-02T15:04:05.000Z") + 1

// Stamp copies r to w, putting the time each line began to arrive (now,
// in UTC, as [StampLayout]) and a space at its head. It writes what it has
// read at once, so that a line is in w as soon as it was written, and
// returns at the end of r. A failed write drops what it held and goes on:
// the service writing to r must never stop or die because its log cannot
// be written (a full disk); r's writer sees no error. It returns r's
// error, nil at its end.
//
// It is the body of the log stamper, the small process between a service
// whose spec asks for timestamps and its log file (see
// [ProcessRunner.Stamper]).
func Stamp(r io.Reader, w io.Writer, now func() time.Time) error {
	in := make([]byte, 32<<10)
	out := make([]byte, 0, 40<<10)
	lineStart := true
	for {
		n, err := r.Read(in)
		if n > 0 {
			stamp := now().UTC()
			out = out[:0]
			for data := in[:n]; len(data) > 0; {
				if lineStart {
					out = stamp.AppendFormat(out, StampLayout)
					out = append(out, ' ')
					lineStart = false
				}
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					out = append(out, data...)
					break
				}
				out = append(out, data[:i+1]...)
				data = data[i+1:]
				lineStart = true
			}
			_, _ = w.Write(out)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// LineTime returns the stamp at the head of a stamped log line, if it has
// one.
func LineTime(line []byte) (time.Time, bool) {
	if len(line) < stampLen || line[stampLen-1] != ' ' {
		return time.Time{}, false
	}
	t, err := time.Parse(StampLayout, string(line[:stampLen-1]))
	return t, err == nil
}

// SinceWriter passes on to W the lines of a stamped log from the first one
// stamped at or after Since: lines before it are dropped, and so are
// unstamped lines before any stamped one (a line Solo wrote about dropped
// output, or output from before the service was stamped). Once a line
// passes, everything after it does. Write it whole lines or parts; it
// keeps an unfinished line until its end comes, and Flush passes it on.
type SinceWriter struct {
	W     io.Writer
	Since time.Time

	open    bool   // a line at or after Since was seen
	partial []byte // the head of a line not yet ended
}

// Write implements io.Writer.
func (s *SinceWriter) Write(p []byte) (int, error) {
	if s.open {
		return s.W.Write(p)
	}
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			if len(s.partial) >= stampLen {
				s.decide()
				if s.open {
					rest := s.partial
					s.partial = nil
					if _, err := s.W.Write(rest); err != nil {
						return 0, err
					}
				}
			}
			return n, nil
		}
		line := append(s.partial, p[:i+1]...)
		s.partial = s.partial[:0]
		p = p[i+1:]
		if t, ok := LineTime(line); ok && !t.Before(s.Since) {
			s.open = true
			if _, err := s.W.Write(line); err != nil {
				return 0, err
			}
			if _, err := s.W.Write(p); err != nil {
				return 0, err
			}
			return n, nil
		}
	}
	return n, nil
}

// decide opens s if the unfinished line's stamp is at or after Since, or
// forgets it if it is before (the rest of that line is dropped as it
// comes: it is remembered as a line that did not pass).
func (s *SinceWriter) decide() {
	if t, ok := LineTime(s.partial); ok && !t.Before(s.Since) {
		s.open = true
	}
}

// Flush passes on an unfinished line that passes.
func (s *SinceWriter) Flush() error {
	if s.open || len(s.partial) == 0 {
		return nil
	}
	s.decide()
	if s.open {
		_, err := s.W.Write(s.partial)
		s.partial = nil
		return err
	}
	return nil
}
