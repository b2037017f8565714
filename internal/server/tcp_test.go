package server

import (
	"context"
	"io"
	"net"
	"sync"
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

// TestTCPMessageSizeCap: a message over TCPMaxMessage never reaches the
// handler: it is answered FORMERR (a response is not answered at all) and
// skipped, and the connection goes on with the next frame.
func TestTCPMessageSizeCap(t *testing.T) {
	for _, tt := range []struct {
		name     string
		size     int
		response bool
		formErr  bool // else answered by the handler
	}{
		{"at the cap", DefaultTCPMaxMessage, false, false},
		{"one byte over", DefaultTCPMaxMessage + 1, false, true},
		{"largest frame", 65535, false, true},
		{"response over the cap", 20000, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHeldHandler()
			r := serve(t, &Server{Handler: h}, "127.0.0.1:0")
			conn := dialTCP(t, r.addr)
			opts := []testsupport.QueryOption{testsupport.WithPaddedSize(tt.size)}
			if tt.response {
				opts = append([]testsupport.QueryOption{func(m *dns.Msg) { m.Response = true }}, opts...)
			}
			_, err := conn.Conn.Write(append(frame(t, "big.", 1, opts...), frame(t, "next.", 2)...))
			require.NoError(t, err)
			// Replies may come in any order.
			replies := map[uint16]*dns.Msg{}
			n := 2
			if tt.response {
				n = 1
			}
			for range n {
				m, err := conn.ReadMsg()
				require.NoError(t, err)
				replies[m.Id] = m
			}
			require.Len(t, replies, n)
			requireAnswered(t, replies[2], "next.")
			switch {
			case tt.response:
			case tt.formErr:
				m := replies[1]
				require.True(t, m.Response)
				require.Equal(t, dns.RcodeFormatError, m.Rcode)
				require.True(t, m.RecursionDesired, "RD copied from the query")
				require.Empty(t, m.Question)
			default:
				requireAnswered(t, replies[1], "big.")
			}
			want := int32(1)
			if !tt.formErr && !tt.response {
				want = 2
			}
			require.Equal(t, want, h.calls.Load(), "queries the handler saw")
		})
	}
}

// TestTCPHeldBytesBudget opens many connections that pipeline queries to
// a handler holding every one: the server stops reading once the queries
// it holds reach TCPHeldBytes, and once the handler lets them go every
// query is answered and the account is back at zero. A query is accounted
// at the size of its buffer: its own for a large one, a pooled 128-byte
// one for a small one.
func TestTCPHeldBytesBudget(t *testing.T) {
	const (
		budget   = 64 << 10
		conns    = 20
		pipeline = 50
	)
	for _, tt := range []struct {
		name            string
		size, accounted int
	}{
		{"large queries", 3000, 3000},
		{"small queries", 100, smallMsg},
	} {
		t.Run(tt.name, func(t *testing.T) {
			maxHeld := budget / tt.accounted // queries the budget can hold
			require.Less(t, maxHeld, conns*pipeline, "the test must overrun the budget")
			h := newHeldHandler("*")
			var peak atomic.Int64 // held bytes seen from inside the handler
			s := &Server{TCPHeldBytes: budget, TCPPipeline: pipeline, ShutdownGrace: time.Millisecond}
			s.Handler = HandlerFunc(func(ctx context.Context, req *Request, dst []byte) []byte {
				for {
					p, held := peak.Load(), s.HeldBytes()
					if held <= p || peak.CompareAndSwap(p, held) {
						break
					}
				}
				return h.ServeDNS(ctx, req, dst)
			})
			r := serve(t, s, "127.0.0.1:0")

			var wg sync.WaitGroup
			defer wg.Wait()
			var answered atomic.Int32
			for c := range conns {
				conn := dialTCP(t, r.addr)
				var out []byte
				for i := range pipeline {
					out = append(out, frame(t, "padded.", uint16(c*pipeline+i), testsupport.WithPaddedSize(tt.size))...)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					// The server reads only what its budget allows, so
					// this write may block until the handler lets go.
					if _, err := conn.Conn.Write(out); err != nil {
						return
					}
					for range pipeline {
						if m, err := conn.ReadMsg(); err != nil || len(m.Answer) != 1 {
							return
						}
						answered.Add(1)
					}
				}()
			}

			require.Eventually(t, func() bool { return h.calls.Load() >= int32(maxHeld) }, 10*time.Second, time.Millisecond)
			// Give the readers time to overrun the budget if they were
			// going to.
			time.Sleep(200 * time.Millisecond)
			require.LessOrEqual(t, h.calls.Load(), int32(maxHeld), "queries read beyond the budget")
			require.LessOrEqual(t, r.HeldBytes(), int64(budget))
			require.Greater(t, r.HeldBytes(), int64(budget-tt.accounted), "the budget is used")

			close(h.release)
			require.Eventually(t, func() bool { return answered.Load() == conns*pipeline }, 30*time.Second, time.Millisecond)
			require.LessOrEqual(t, peak.Load(), int64(budget))
			require.Eventually(t, func() bool { return r.HeldBytes() == 0 }, 10*time.Second, time.Millisecond)
		})
	}
}

// echoFast answers every query on the read goroutine with the query
// itself, QR set: a handler that allocates nothing, to measure the
// listener alone.
type echoFast struct{}

func (echoFast) ServeFast(req *Request, dst []byte) ([]byte, bool) {
	dst = append(dst[:0], req.Msg...)
	dst[2] |= 0x80
	return dst, true
}

func (echoFast) ServeDNS(_ context.Context, req *Request, dst []byte) []byte {
	r, _ := echoFast{}.ServeFast(req, dst)
	return r
}

// BenchmarkTCPFast sends queries one at a time on one TCP connection to a
// FastHandler; the listener's share of allocs/op should be zero.
func BenchmarkTCPFast(b *testing.B) {
	r := serve(b, &Server{Handler: echoFast{}}, "127.0.0.1:0")
	conn, err := net.Dial("tcp", r.addr)
	require.NoError(b, err)
	defer conn.Close()
	query := testsupport.AppendTCPFrame(nil, testsupport.PackQuery(b, "bench.example.", dns.TypeA))
	reply := make([]byte, len(query))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(query); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, reply); err != nil {
			b.Fatal(err)
		}
	}
}
