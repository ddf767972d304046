package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Defaults and bounds of a service's [LogSpec]. The defaults are the
// supervisor's own (a test keeps them equal; the packages may not import
// each other).
const (
	DefaultLogMaxSize ByteSize = 10 << 20
	DefaultLogFiles            = 3
	MinLogMaxSize     ByteSize = 4 << 10
	MaxLogMaxSize     ByteSize = 1 << 30
	MaxLogFiles                = 100
)

// LogSpec is how a service's output is kept: its log file is rotated when
// it nears MaxSize bytes, Files rotated files are kept, and with Timestamps
// each line is prefixed with the time it was written (RFC 3339, UTC, in
// milliseconds) by a small stamper process between the service and its
// file. Zero fields mean the defaults: 10 MiB, 3 files, no timestamps.
type LogSpec struct {
	MaxSize    ByteSize `json:"max_size,omitempty"`
	Files      int      `json:"files,omitempty"`
	Timestamps bool     `json:"timestamps,omitempty"`
}

// ByteSize is a number of bytes. It decodes from an integer or from a
// string: a number of bytes, or one with a unit, K M G (powers of 1000,
// with or without a B) or KiB MiB GiB (powers of 1024): "10MiB", "10M",
// "512k", "1048576". It encodes as an integer.
type ByteSize int64

// ParseByteSize reads a size as [ByteSize] decodes it.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := map[string]float64{
		"": 1, "b": 1,
		"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
		"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30,
	}[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("size %q: want bytes, or a number with K, M, G, KiB, MiB or GiB, such as 10MiB", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*mult > float64(1<<62) {
		return 0, fmt.Errorf("size %q: want bytes, or a number with K, M, G, KiB, MiB or GiB, such as 10MiB", s)
	}
	return ByteSize(f * mult), nil
}

func (b ByteSize) String() string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return strconv.FormatInt(int64(b>>30), 10) + "GiB"
	case b >= 1<<20 && b%(1<<20) == 0:
		return strconv.FormatInt(int64(b>>20), 10) + "MiB"
	case b >= 1<<10 && b%(1<<10) == 0:
		return strconv.FormatInt(int64(b>>10), 10) + "KiB"
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// UnmarshalJSON accepts an integer or a string (see [ByteSize]); its
// errors name the field log.max_size, where a ByteSize is decoded.
func (b *ByteSize) UnmarshalJSON(data []byte) error { return b.decodeJSON("max_size", data) }

// UnmarshalText accepts what [ParseByteSize] does (for flags).
func (b *ByteSize) UnmarshalText(text []byte) error { return b.decodeText("max_size", text) }

// decodeJSON is the body of UnmarshalJSON, with errors naming field.
func (b *ByteSize) decodeJSON(field string, data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		return b.decodeText(field, []byte(s))
	}
	var n int64
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("%s: want a number of bytes or a string such as \"10MiB\", got %.20s", field, data)
	}
	*b = ByteSize(n)
	return nil
}

func (b *ByteSize) decodeText(field string, text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	*b = v
	return nil
}

// MemorySize is a [ByteSize] for a spec's memory_max: the same forms,
// with decoding errors that name memory_max.
type MemorySize ByteSize

func (m MemorySize) String() string { return ByteSize(m).String() }

// UnmarshalJSON accepts what [ByteSize.UnmarshalJSON] does.
func (m *MemorySize) UnmarshalJSON(data []byte) error {
	return (*ByteSize)(m).decodeJSON("memory_max", data)
}

// UnmarshalText accepts what [ParseByteSize] does.
func (m *MemorySize) UnmarshalText(text []byte) error {
	return (*ByteSize)(m).decodeText("memory_max", text)
}

// normalizeLog fills the defaults into l, and returns nil for a LogSpec
// that asks for nothing but them, so that specs compare equal whether
// they spell the defaults out or not.
func normalizeLog(l *LogSpec) *LogSpec {
	if l == nil {
		return nil
	}
	n := *l
	if n.MaxSize == 0 {
		n.MaxSize = DefaultLogMaxSize
	}
	if n.Files == 0 {
		n.Files = DefaultLogFiles
	}
	if n == (LogSpec{MaxSize: DefaultLogMaxSize, Files: DefaultLogFiles}) {
		return nil
	}
	return &n
}

// Limits returns the log's size and file count, the defaults when l is nil.
func (l *LogSpec) Limits() (maxSize ByteSize, files int) {
	n := normalizeLog(l)
	if n == nil {
		return DefaultLogMaxSize, DefaultLogFiles
	}
	return n.MaxSize, n.Files
}

// Stamped reports whether each line is to be timestamped.
func (l *LogSpec) Stamped() bool { return l != nil && l.Timestamps }

// checkLog returns the problem of l, with the field it is in, if any.
func checkLog(l *LogSpec) (field, problem string) {
	if l == nil {
		return "", ""
	}
	switch {
	case l.MaxSize < MinLogMaxSize || l.MaxSize > MaxLogMaxSize:
		return "log.max_size", fmt.Sprintf("is %s; want %s to %s", l.MaxSize, MinLogMaxSize, MaxLogMaxSize)
	case l.Files < 1 || l.Files > MaxLogFiles:
		return "log.files", fmt.Sprintf("is %d; want 1 to %d", l.Files, MaxLogFiles)
	}
	return "", ""
}
