package server

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/stretchr/testify/require"
)

// heldHandler answers every query with answer, holding those for names
// in hold until release is closed (or the server's handler context ends).
// It counts the queries it has been given.
type heldHandler struct {
	hold    map[string]bool
	release chan struct{}
	calls   atomic.Int32
}

func newHeldHandler(hold ...string) *heldHandler {
	h := &heldHandler{hold: map[string]bool{}, release: make(chan struct{})}
	for _, n := range hold {
		h.hold[n] = true
	}
	return h
}

func (h *heldHandler) ServeDNS(ctx context.Context, req *Request, dst []byte) []byte {
	h.calls.Add(1)
	var m dns.Msg
	if m.Unpack(req.Msg) != nil || len(m.Question) != 1 {
		return nil
	}
	if h.hold[m.Question[0].Name] || h.hold["*"] {
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil
		}
	}
	return answer(req.Msg, dst)
}

// dialTCP opens a DNS connection to addr, closed when the test ends, with
// a deadline far beyond anything the test waits for.
func dialTCP(t *testing.T, addr string) *dns.Conn {
	t.Helper()
	conn, err := dns.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	return conn
}

// frame returns a query for name with id, packed in its TCP frame.
func frame(t *testing.T, name string, id uint16, opts ...testsupport.QueryOption) []byte {
	t.Helper()
	return testsupport.AppendTCPFrame(nil, testsupport.PackQuery(t, name, dns.TypeA, append([]testsupport.QueryOption{testsupport.WithID(id)}, opts...)...))
}

// requireAnswer reads the next reply and checks it answers name with id.
func requireAnswer(t *testing.T, conn *dns.Conn, name string, id uint16) {
	t.Helper()
	m, err := conn.ReadMsg()
	require.NoError(t, err)
	require.Equal(t, id, m.Id)
	requireAnswered(t, m, name)
}

// requireAnswered checks that m is answer's reply for name.
func requireAnswered(t *testing.T, m *dns.Msg, name string) {
	t.Helper()
	require.NotNil(t, m, "no reply for %s", name)
	require.Equal(t, dns.RcodeSuccess, m.Rcode)
	require.Len(t, m.Question, 1)
	require.Equal(t, name, m.Question[0].Name)
	require.Len(t, m.Answer, 1)
}

// requireClosed checks that the server closes conn.
func requireClosed(t *testing.T, r *running, conn *dns.Conn) {
	t.Helper()
	_, err := conn.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
	require.Eventually(t, func() bool { return r.TCPConns() == 0 }, 10*time.Second, time.Millisecond)
}

// TestTCPPartialFrameSurvivesIdleTimeout: while a query is being answered
// the client sends part of the next frame and then, several idle timeouts
// later, the rest. The bytes already read must not be lost: both queries
// are answered, in frame.
func TestTCPPartialFrameSurvivesIdleTimeout(t *testing.T) {
	const idle = 100 * time.Millisecond
	for _, tt := range []struct {
		name  string
		split int // bytes of the second frame sent before the pause
	}{
		{"inside the length prefix", 1},
		{"inside the message", 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHeldHandler("held.")
			r := serve(t, &Server{Handler: h, TCPIdleTimeout: idle}, "127.0.0.1:0")
			conn := dialTCP(t, r.addr)
			second := frame(t, "second.", 2)
			_, err := conn.Conn.Write(append(frame(t, "held.", 1), second[:tt.split]...))
			require.NoError(t, err)
			require.Eventually(t, func() bool { return h.calls.Load() == 1 }, 10*time.Second, time.Millisecond)
			time.Sleep(3 * idle) // read deadlines pass mid-frame
			_, err = conn.Conn.Write(second[tt.split:])
			require.NoError(t, err)
			requireAnswer(t, conn, "second.", 2)
			close(h.release)
			requireAnswer(t, conn, "held.", 1)
		})
	}
}

// TestTCPPartialFrameClosedWhenIdle: a partial frame that makes no
// progress is no reason to keep a connection open (slowloris): once
// nothing is in flight and nothing has arrived for the idle timeout, the
// connection is closed.
func TestTCPPartialFrameClosedWhenIdle(t *testing.T) {
	const idle = 100 * time.Millisecond
	for _, tt := range []struct {
		name    string
		held    bool // a query is in flight while the frame stalls
		partial int  // bytes of the stalled frame sent
	}{
		{"one byte of the length prefix", false, 1},
		{"part of the message", false, 9},
		{"after the query in flight is answered", true, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHeldHandler("held.")
			r := serve(t, &Server{Handler: h, TCPIdleTimeout: idle}, "127.0.0.1:0")
			conn := dialTCP(t, r.addr)
			var out []byte
			if tt.held {
				out = frame(t, "held.", 1)
			}
			out = append(out, frame(t, "stalled.", 2)[:tt.partial]...)
			_, err := conn.Conn.Write(out)
			require.NoError(t, err)
			if tt.held {
				require.Eventually(t, func() bool { return h.calls.Load() == 1 }, 10*time.Second, time.Millisecond)
				time.Sleep(3 * idle)
				require.Equal(t, 1, r.TCPConns(), "closed with a query in flight")
				close(h.release)
				requireAnswer(t, conn, "held.", 1)
			}
			requireClosed(t, r, conn)
		})
	}
}
