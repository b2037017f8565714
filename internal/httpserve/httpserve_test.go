package httpserve

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

// serve runs Serve on a loopback port with limits until the test ends and
// returns the address.
func serve(t *testing.T, h http.Handler, limits Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, limits) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return ln.Addr().String()
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })

func TestIdleKeepAliveClosed(t *testing.T) {
	addr := serve(t, ok, Limits{IdleTimeout: 50 * time.Millisecond})
	c := testsupport.DialHTTP(t, addr)
	c.Send(t, "/")
	require.Equal(t, http.StatusOK, c.Read(t))
	// The connection is kept alive after the response, then closed by
	// the server once idle for IdleTimeout.
	require.Eventually(t, c.ClosedByServer(), 10*time.Second, 10*time.Millisecond)
}

func TestSlowHeadersCutOff(t *testing.T) {
	addr := serve(t, ok, Limits{ReadHeaderTimeout: 50 * time.Millisecond})
	c := testsupport.DialHTTP(t, addr)
	// Headers started and never finished.
	c.Write(t, "GET / HTTP/1.1\r\nHost: test\r\n")
	require.Eventually(t, c.ClosedByServer(), 10*time.Second, 10*time.Millisecond)
}

func TestConnectionCap(t *testing.T) {
	var entered atomic.Int32
	// Each request waits for its path's release.
	release := map[string]chan struct{}{"/a": make(chan struct{}), "/b": make(chan struct{}), "/c": make(chan struct{})}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Add(1)
		<-release[r.URL.Path]
		_, _ = io.WriteString(w, "ok\n")
	})
	addr := serve(t, h, Limits{MaxConns: 2})
	a, b := testsupport.DialHTTP(t, addr), testsupport.DialHTTP(t, addr)
	a.Send(t, "/a")
	b.Send(t, "/b")
	require.Eventually(t, func() bool { return entered.Load() == 2 }, 10*time.Second, time.Millisecond)

	// A third connection is not accepted while both slots are held: its
	// request reaches no handler.
	c := testsupport.DialHTTP(t, addr)
	c.Send(t, "/c")
	require.Never(t, func() bool { return entered.Load() > 2 }, 200*time.Millisecond, 10*time.Millisecond)

	// a's response leaves a kept alive: still no slot. Once a closes, c
	// is accepted and served.
	close(release["/a"])
	require.Equal(t, http.StatusOK, a.Read(t))
	require.Equal(t, int32(2), entered.Load())
	require.NoError(t, a.Conn.Close())
	require.Eventually(t, func() bool { return entered.Load() == 3 }, 10*time.Second, time.Millisecond)
	close(release["/b"])
	close(release["/c"])
	require.Equal(t, http.StatusOK, b.Read(t))
	require.Equal(t, http.StatusOK, c.Read(t))
}

func TestShutdownClosesListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, ok, Limits{}) }()
	c := testsupport.DialHTTP(t, ln.Addr().String())
	c.Send(t, "/")
	require.Equal(t, http.StatusOK, c.Read(t))
	cancel()
	require.NoError(t, <-done)
	// The idle keep-alive connection was closed, and nothing listens.
	require.Eventually(t, c.ClosedByServer(), 10*time.Second, 10*time.Millisecond)
	_, err = net.Dial("tcp", ln.Addr().String())
	require.Error(t, err)
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{IdleTimeout: time.Second}.withDefaults()
	require.Equal(t, Limits{
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       time.Second,
		MaxConns:          DefaultMaxConns,
		ShutdownGrace:     DefaultShutdownGrace,
	}, got)
}
