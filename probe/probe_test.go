package probe_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/solo-rt/solo/probe"
)

// TestHTTP: 2xx and 3xx pass, other answers fail with their status, and
// what is not HTTP, a refused connection and a server that never answers
// fail with why; the request reaches the path with its query.
func TestHTTP(t *testing.T) {
	var seen string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.URL.RequestURI() + " " + r.Host
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	require.NoError(t, probe.HTTP(srv.URL+"/ok?x=1")(ctx))
	assert.Equal(t, "/ok?x=1 "+srv.Listener.Addr().String(), seen)
	require.NoError(t, probe.HTTP(srv.URL+"/moved")(ctx))
	err := probe.HTTP(srv.URL + "/broken")(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "500 Internal Server Error")

	garbage, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer garbage.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-nope\r\n"))
			c.Close()
		}
	}()
	err = probe.HTTP("http://" + garbage.Addr().String() + "/")(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not an HTTP answer")

	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	err = probe.HTTP("http://" + silent.Addr().String() + "/")(short) // accepted by the backlog, never answered
	require.Error(t, err)
	assert.Contains(t, err.Error(), "timeout")

	closed := silent.Addr().String()
	silent.Close()
	err = probe.HTTP("http://" + closed + "/")(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused")
}
