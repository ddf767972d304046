package state

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuoteCommand: what QuoteCommand shows, pasted into a shell, gives
// back the same arguments, and plain arguments stay bare.
func TestQuoteCommand(t *testing.T) {
	assert.Equal(t, "redis-server --save '' --port 6379", QuoteCommand([]string{"redis-server", "--save", "", "--port", "6379"}))
	assert.Equal(t, "sh -c 'echo it'\\''s; exit 3'", QuoteCommand([]string{"sh", "-c", "echo it's; exit 3"}))
	for _, argv := range [][]string{
		{"a", "", "b c", "it's", `"q"`, "$HOME", "`id`", "x\ny", "*", "a\\b", "--k=v", "π"},
		{""},
	} {
		out, err := exec.Command("sh", "-c", "set -- "+QuoteCommand(argv[1:])+` sentinel; for a in "$@"; do printf '[%s]' "$a"; done`).Output()
		require.NoError(t, err)
		want := ""
		for _, a := range append(argv[1:], "sentinel") {
			want += "[" + a + "]"
		}
		assert.Equal(t, want, string(out), "argv %q shown as %s", argv, QuoteCommand(argv))
		assert.NotContains(t, QuoteCommand(argv), "\x00")
	}
}
