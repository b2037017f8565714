package testsupport

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// HTTPConn is a raw HTTP/1.1 client connection whose requests are written
// by hand, so a test controls keep-alive and can send partial headers, and
// can see when the server closes the connection.
type HTTPConn struct {
	// Conn is the TCP connection, closed when the test ends.
	Conn net.Conn
	br   *bufio.Reader
}

// DialHTTP connects to the HTTP server at addr (host:port).
func DialHTTP(t testing.TB, addr string) *HTTPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &HTTPConn{Conn: c, br: bufio.NewReader(c)}
}

// Send writes a GET request for path, keeping the connection alive.
func (c *HTTPConn) Send(t testing.TB, path string) {
	t.Helper()
	c.Write(t, "GET "+path+" HTTP/1.1\r\nHost: test\r\n\r\n")
}

// Write writes raw bytes: a partial request, say.
func (c *HTTPConn) Write(t testing.TB, raw string) {
	t.Helper()
	_, err := io.WriteString(c.Conn, raw)
	require.NoError(t, err)
}

// Read reads one response and its body, leaving the connection open, and
// returns the status code.
func (c *HTTPConn) Read(t testing.TB) int {
	t.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

// ClosedByServer starts reading the connection and returns a function,
// for require.Eventually, reporting whether the server has closed it: the
// read ended with EOF or a reset, without a byte. Call it once, after the
// last response has been read.
func (c *HTTPConn) ClosedByServer() func() bool {
	res := make(chan error, 1)
	// Ends when the server or the test's cleanup closes the connection.
	go func() {
		_, err := c.br.ReadByte()
		res <- err
	}()
	var closed atomic.Bool
	return func() bool {
		select {
		case err := <-res:
			var op *net.OpError
			closed.Store(errors.Is(err, io.EOF) || (errors.As(err, &op) && !op.Timeout()))
		default:
		}
		return closed.Load()
	}
}
