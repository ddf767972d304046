package supervisor

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunks is a reader that returns one chunk per Read, as a pipe does.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	*c = (*c)[1:]
	return n, nil
}

func TestStamp(t *testing.T) {
	base := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.FixedZone("x", 3600))
	reads := 0
	now := func() time.Time { reads++; return base.Add(time.Duration(reads) * time.Second) }
	in := chunks{"one\ntwo\npar", "tial\n", "\n", "last without end"}
	var out bytes.Buffer
	require.NoError(t, Stamp(&in, &out, now))
	assert.Equal(t, ""+
		"2026-03-04T04:06:08.891Z one\n"+
		"2026-03-04T04:06:08.891Z two\n"+
		"2026-03-04T04:06:08.891Z partial\n"+
		"2026-03-04T04:06:10.891Z \n"+
		"2026-03-04T04:06:11.891Z last without end", out.String(), "UTC, milliseconds, the time a line began")

	ts, ok := LineTime([]byte("2026-03-04T04:06:08.891Z one\n"))
	require.True(t, ok)
	assert.True(t, ts.Equal(base.Add(time.Second)))
	_, ok = LineTime([]byte("[solo: 12 bytes of this log were dropped]\n"))
	assert.False(t, ok)
}

// A log file that cannot be written must not stop the stamper: the
// service behind it would block or die.
func TestStamp_FailedWritesGoOn(t *testing.T) {
	in := chunks{"a\n", "b\n"}
	f, err := os.Open(filepath.Join(t.TempDir()))
	require.NoError(t, err)
	defer f.Close() // a directory: every write fails
	require.NoError(t, Stamp(&in, f, time.Now))
	assert.Empty(t, in, "it stopped reading")
}

func TestSinceWriter(t *testing.T) {
	stamp := func(sec int, text string) string {
		return time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC).Format(StampLayout) + " " + text + "\n"
	}
	log := "[solo: 5 bytes of this log were dropped]\n" + stamp(1, "old") + "continued, unstamped\n" + stamp(5, "new") + "its tail\n" + stamp(2, "clock went back")
	since := time.Date(2026, 1, 1, 0, 0, 3, 0, time.UTC)
	want := stamp(5, "new") + "its tail\n" + stamp(2, "clock went back")
	for _, size := range []int{1, 3, 7, 40, len(log)} {
		var out bytes.Buffer
		w := &SinceWriter{W: &out, Since: since}
		for rest := log; len(rest) > 0; {
			n := min(size, len(rest))
			_, err := w.Write([]byte(rest[:n]))
			require.NoError(t, err)
			rest = rest[n:]
		}
		require.NoError(t, w.Flush())
		assert.Equal(t, want, out.String(), "written %d bytes at a time", size)
	}

	var out bytes.Buffer
	w := &SinceWriter{W: &out, Since: since}
	w.Write([]byte(stamp(1, "old") + strings.TrimSuffix(stamp(4, "unended"), "\n")))
	require.NoError(t, w.Flush())
	assert.Equal(t, strings.TrimSuffix(stamp(4, "unended"), "\n"), out.String(), "an unended last line that passes")
}

// A rotation that must drop bytes still keeps key.log.1 within MaxSize,
// counting the line that tells of the drop: a file of 41 lines of 100
// bytes under a MaxSize of 4 KiB once became 4,099 bytes.
func TestLogs_DroppedHeaderWithinMaxSize(t *testing.T) {
	const maxSize = 4 << 10
	l, err := NewLogs(t.TempDir(), LogOptions{})
	require.NoError(t, err)
	defer l.Close()
	line := strings.Repeat("x", 99) + "\n"
	for _, lines := range []int{41, 45, 80, 1000} {
		key := fmt.Sprintf("t/lines%d", lines)
		f, err := l.OpenLimited(key, LogLimits{MaxSize: maxSize, MaxFiles: 1})
		require.NoError(t, err)
		_, err = f.WriteString(strings.Repeat(line, lines))
		f.Close()
		require.NoError(t, err)
		require.NoError(t, l.Check(key))
		b, err := os.ReadFile(rotated(l.Path(key), 1))
		require.NoError(t, err)
		assert.LessOrEqual(t, len(b), maxSize, "%d lines", lines)
		first, rest, _ := strings.Cut(string(b), "\n")
		assert.True(t, strings.HasPrefix(first, "[solo: ") && strings.HasPrefix(rest, line), "%d lines: key.log.1 starts %.120q, want the dropped-bytes line, then whole lines", lines, b)
		var dropped int
		_, err = fmt.Sscanf(first, "[solo: %d bytes", &dropped)
		require.NoError(t, err)
		assert.Equal(t, lines*len(line), dropped+len(rest), "%d lines: dropped plus kept is not what was written", lines)
	}
}

// A key's own limits rotate it at its own size and keep its own number of
// files; another key keeps the Logs' defaults.
func TestLogs_OpenLimited(t *testing.T) {
	dir := t.TempDir()
	l, err := NewLogs(dir, LogOptions{})
	require.NoError(t, err)
	defer l.Close()
	f, err := l.OpenLimited("t/small", LogLimits{MaxSize: 4 << 10, MaxFiles: 1})
	require.NoError(t, err)
	defer f.Close()
	line := strings.Repeat("x", 99) + "\n"
	for round := 0; round < 3; round++ {
		for i := 0; i < 40; i++ { // 4,000 bytes: over 7/8 of 4 KiB
			_, err := f.WriteString(line)
			require.NoError(t, err)
		}
		require.NoError(t, l.Check("t/small"))
	}
	path := l.Path("t/small")
	fi, err := os.Stat(rotated(path, 1))
	require.NoError(t, err, "not rotated at its own size")
	assert.LessOrEqual(t, fi.Size(), int64(4<<10))
	_, err = os.Stat(rotated(path, 2))
	assert.ErrorIs(t, err, os.ErrNotExist, "more files kept than its limit")

	_, err = l.OpenLimited("t/bad", LogLimits{MaxSize: -1})
	assert.Error(t, err)

	g, err := l.Open("t/big")
	require.NoError(t, err)
	defer g.Close()
	for i := 0; i < 120; i++ {
		g.WriteString(line)
	}
	require.NoError(t, l.Check("t/big"))
	_, err = os.Stat(rotated(l.Path("t/big"), 1))
	assert.ErrorIs(t, err, os.ErrNotExist, "a key without limits rotated below the default size")
}
