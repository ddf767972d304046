package tcpproxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echo serves an echo on 127.0.0.1 until t ends.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// firstLine names a connection by its first line ("from NAME\n").
func firstLine(r *bufio.Reader) string {
	for n := 1; n < 64; n++ {
		b, err := r.Peek(n)
		if err != nil {
			return ""
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			name, _ := bytes.CutPrefix(b[:i], []byte("from "))
			return string(name)
		}
	}
	return ""
}

// roundTrip says msg on c and tells whether it came back.
func roundTrip(c net.Conn, msg string) bool {
	if _, err := io.WriteString(c, msg); err != nil {
		return false
	}
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	return err == nil && string(got) == msg
}

func dial(t *testing.T, p *Proxy, hello string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	if hello != "" {
		require.True(t, roundTrip(c, hello), "hello through the proxy")
	}
	return c
}

// refused tells whether a new connection through p that says msg fails:
// at connect (the reset can come first) or at the round trip.
func refused(t *testing.T, p *Proxy, msg string) bool {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		return true
	}
	defer c.Close()
	return !roundTrip(c, msg)
}

func newProxy(t *testing.T, o *Options) *Proxy {
	t.Helper()
	p, err := New("127.0.0.1:0", echo(t), o)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func TestProxy_CutAndHeal(t *testing.T) {
	p := newProxy(t, nil)
	c := dial(t, p, "hello\n")

	p.Cut()
	assert.False(t, roundTrip(c, "more\n"), "an open connection is dropped")
	assert.True(t, refused(t, p, "hello\n"), "a new one is refused")

	p.Heal()
	dial(t, p, "hello again\n")
}

func TestProxy_CutFrom(t *testing.T) {
	p := newProxy(t, &Options{Sender: firstLine})
	a := dial(t, p, "from a\n")
	b := dial(t, p, "from b\n")
	anon := dial(t, p, "x\n")

	p.CutFrom("a")
	assert.False(t, roundTrip(a, "more\n"), "a's connection is dropped")
	assert.True(t, refused(t, p, "from a\n"), "a new one from a is refused")
	assert.True(t, roundTrip(b, "more\n"), "b's is not")
	assert.True(t, roundTrip(anon, "more\n"), "nor an unnamed one")
	dial(t, p, "from b\n")

	// Cut and CutFrom are undone each on its own.
	p.Cut()
	p.Heal()
	assert.True(t, refused(t, p, "from a\n"), "a is still cut")
	p.HealFrom("a")
	dial(t, p, "from a\n")
}

func TestProxy_Close(t *testing.T) {
	p, err := New("127.0.0.1:0", echo(t), nil)
	require.NoError(t, err)
	c := dial(t, p, "hello\n")
	require.NoError(t, p.Close()) // returns once every goroutine ended
	assert.False(t, roundTrip(c, "more\n"))
	_, err = net.Dial("tcp", p.Addr())
	assert.Error(t, err, "nothing listens any more")
}

func TestNew_BadListen(t *testing.T) {
	_, err := New("127.0.0.1:-1", "127.0.0.1:1", nil)
	assert.ErrorContains(t, err, "tcpproxy: listen on 127.0.0.1:-1")
}
