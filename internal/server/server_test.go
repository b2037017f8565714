package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/stretchr/testify/require"
)

// running is a Server under test.
type running struct {
	*Server
	addr   string // UDP and TCP
	pcs    []net.PacketConn
	cancel context.CancelFunc
	done   chan error
}

// serve binds addr for UDP and TCP and serves s on it until the test ends
// (or stop is called).
func serve(t testing.TB, s *Server, addr string) *running {
	t.Helper()
	pc, ln, err := Listen(t.Context(), addr)
	require.NoError(t, err)
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Server: s, addr: pc.LocalAddr().String(), pcs: []net.PacketConn{pc}, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Serve(ctx, []net.PacketConn{pc}, []net.Listener{ln}) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Serve and checks it returned nil; a second call is a no-op.
func (r *running) stop(t testing.TB) {
	r.cancel()
	if r.done == nil {
		return
	}
	select {
	case err := <-r.done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Error("server did not stop")
	}
	r.done = nil
}

// answer packs the reply to msg with one A record, 192.0.2.1.
func answer(msg, dst []byte) []byte {
	var m dns.Msg
	if m.Unpack(msg) != nil || len(m.Question) != 1 {
		return nil
	}
	r := new(dns.Msg).SetReply(&m)
	r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A: net.IPv4(192, 0, 2, 1)}}
	out, err := r.PackBuffer(dst[:cap(dst)])
	if err != nil {
		return nil
	}
	return out
}

// fastSlow answers names under "fast." on the read goroutine and the rest
// through ServeDNS, counting both.
type fastSlow struct {
	fast, slow atomic.Int32
	local      atomic.Value // netip.AddrPort: Local of the last request
}

func (h *fastSlow) ServeFast(req *Request, dst []byte) ([]byte, bool) {
	h.local.Store(req.Local)
	var m dns.Msg
	if m.Unpack(req.Msg) != nil || len(m.Question) != 1 || !dns.IsSubDomain("fast.", m.Question[0].Name) {
		return nil, false
	}
	h.fast.Add(1)
	return answer(req.Msg, dst), true
}

func (h *fastSlow) ServeDNS(_ context.Context, req *Request, dst []byte) []byte {
	h.slow.Add(1)
	return answer(req.Msg, dst)
}

func exchange(t *testing.T, network, addr, name string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, dns.TypeA)
	c := &dns.Client{Net: network, Timeout: 10 * time.Second}
	r, _, err := c.Exchange(m, addr)
	require.NoError(t, err)
	return r
}

func TestFastHandlerFirst(t *testing.T) {
	h := new(fastSlow)
	r := serve(t, &Server{Handler: h}, "127.0.0.1:0")
	tests := []struct {
		network, name  string
		wantFast, slow int32
	}{
		{"udp", "a.fast.", 1, 0},
		{"udp", "a.slow.", 1, 1},
		{"tcp", "b.fast.", 2, 1},
		{"tcp", "b.slow.", 2, 2},
	}
	for _, tt := range tests {
		reply := exchange(t, tt.network, r.addr, tt.name)
		require.Len(t, reply.Answer, 1, "%s %s", tt.network, tt.name)
		require.Equal(t, tt.name, reply.Answer[0].Header().Name)
		require.Equal(t, tt.wantFast, h.fast.Load(), "%s %s", tt.network, tt.name)
		require.Equal(t, tt.slow, h.slow.Load(), "%s %s", tt.network, tt.name)
	}
}

// TestWildcardRepliesFromQueriedAddress serves 0.0.0.0 and queries
// 127.0.0.2 from a connected socket, which takes replies only from the
// address it sent to: the reply must leave from 127.0.0.2, not from the
// address the routing table would pick, and the handler must see it as
// the request's local address.
func TestWildcardRepliesFromQueriedAddress(t *testing.T) {
	h := new(fastSlow)
	r := serve(t, &Server{Handler: h}, "0.0.0.0:0")
	_, port, err := net.SplitHostPort(r.addr)
	require.NoError(t, err)
	for _, dst := range []string{"127.0.0.2", "127.0.0.3"} {
		for _, name := range []string{"w.fast.", "w.slow."} {
			reply := exchange(t, "udp", net.JoinHostPort(dst, port), name)
			require.Len(t, reply.Answer, 1)
			require.Equal(t, dst, h.local.Load().(netip.AddrPort).Addr().String())
		}
	}
}

// TestTCPPipelinedOutOfOrder sends two queries back to back on one
// connection; the first is held until the second has been answered, so a
// server that answered a connection's queries one at a time would never
// answer either.
func TestTCPPipelinedOutOfOrder(t *testing.T) {
	secondSent := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, req *Request, dst []byte) []byte {
		var m dns.Msg
		if m.Unpack(req.Msg) != nil || len(m.Question) != 1 {
			return nil
		}
		if m.Question[0].Name == "first." {
			select {
			case <-secondSent:
			case <-ctx.Done():
				return nil
			}
		}
		out := answer(req.Msg, dst)
		if m.Question[0].Name == "second." {
			defer close(secondSent)
		}
		return out
	})
	r := serve(t, &Server{Handler: h}, "127.0.0.1:0")
	conn, err := dns.Dial("tcp", r.addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	var frames []byte
	for _, name := range []string{"first.", "second."} {
		b, err := new(dns.Msg).SetQuestion(name, dns.TypeA).Pack()
		require.NoError(t, err)
		frames = append(frames, byte(len(b)>>8), byte(len(b)))
		frames = append(frames, b...)
	}
	_, err = conn.Conn.Write(frames)
	require.NoError(t, err)
	for _, want := range []string{"second.", "first."} {
		m, err := conn.ReadMsg()
		require.NoError(t, err)
		require.Equal(t, want, m.Question[0].Name)
	}
}

// TestTCPConnectionCapAndIdleTimeout: a connection over the cap is closed
// at once, an idle one after the idle timeout, but never one whose query
// is still being answered.
func TestTCPConnectionCapAndIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, req *Request, dst []byte) []byte {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return answer(req.Msg, dst)
	})
	r := serve(t, &Server{Handler: h, MaxTCPConns: 1, TCPIdleTimeout: 100 * time.Millisecond}, "127.0.0.1:0")
	conn, err := dns.Dial("tcp", r.addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	require.NoError(t, conn.WriteMsg(new(dns.Msg).SetQuestion("held.", dns.TypeA)))
	require.Eventually(t, func() bool { return r.TCPConns() == 1 }, 10*time.Second, time.Millisecond)

	extra, err := net.Dial("tcp", r.addr)
	require.NoError(t, err)
	defer extra.Close()
	require.NoError(t, extra.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = extra.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "a connection over the cap is closed")

	// Several idle timeouts pass while the query is held: the
	// connection stays open and gets its reply.
	for range 3 {
		time.Sleep(150 * time.Millisecond)
		require.Equal(t, 1, r.TCPConns())
	}
	close(release)
	m, err := conn.ReadMsg()
	require.NoError(t, err)
	require.Len(t, m.Answer, 1)
	// Now it is idle, and closed.
	_, err = conn.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
	require.Eventually(t, func() bool { return r.TCPConns() == 0 }, 10*time.Second, time.Millisecond)
}

// TestShutdown: queries in flight when Serve's context ends are answered
// within the grace period; those still running after it see their context
// cancelled and OnGraceOver called, and Serve returns nil.
func TestShutdown(t *testing.T) {
	for _, tt := range []struct {
		name     string
		graceful bool // the handler finishes within the grace period
	}{{"finishes within grace", true}, {"outlives grace", false}} {
		t.Run(tt.name, func(t *testing.T) {
			var inflight sync.WaitGroup
			inflight.Add(2)
			release := make(chan struct{})
			var cancelled, graceOver atomic.Bool
			h := HandlerFunc(func(ctx context.Context, req *Request, dst []byte) []byte {
				inflight.Done()
				select {
				case <-release:
				case <-ctx.Done():
					cancelled.Store(true)
				}
				return answer(req.Msg, dst)
			})
			grace := time.Minute
			if !tt.graceful {
				grace = 50 * time.Millisecond
			}
			s := &Server{Handler: h, ShutdownGrace: grace, OnGraceOver: func() { graceOver.Store(true) }}
			r := serve(t, s, "127.0.0.1:0")
			replies := make(chan *dns.Msg, 2)
			for _, network := range []string{"udp", "tcp"} {
				go func() {
					c := &dns.Client{Net: network, Timeout: time.Minute}
					m, _, _ := c.Exchange(new(dns.Msg).SetQuestion("slow.", dns.TypeA), r.addr)
					replies <- m
				}()
			}
			inflight.Wait()
			r.cancel()
			if tt.graceful {
				close(release)
			}
			for range 2 {
				m := <-replies
				require.NotNil(t, m, "a query in flight was dropped")
				require.Len(t, m.Answer, 1)
			}
			r.stop(t)
			require.Equal(t, !tt.graceful, cancelled.Load(), "handler context cancelled")
			require.Equal(t, !tt.graceful, graceOver.Load(), "OnGraceOver called")
			// Nothing is served any more.
			c := &dns.Client{Timeout: 200 * time.Millisecond}
			_, _, err := c.Exchange(new(dns.Msg).SetQuestion("late.", dns.TypeA), r.addr)
			require.Error(t, err)
		})
	}
}

func TestServeNeedsHandler(t *testing.T) {
	require.Error(t, new(Server).Serve(t.Context(), nil, nil))
}

// TestSetReceiveBuffer: the buffer is raised (past net.core.rmem_max as
// root, through SO_RCVBUFFORCE) and never lowered, so a larger one set by
// a socket unit's ReceiveBuffer= is kept.
func TestSetReceiveBuffer(t *testing.T) {
	pc, ln, err := Listen(t.Context(), "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	defer ln.Close()
	before := testsupport.ReceiveBuffer(t, pc)
	require.NoError(t, setReceiveBuffer(pc, 4<<20))
	raised := testsupport.ReceiveBuffer(t, pc)
	require.GreaterOrEqual(t, raised, before)
	if os.Geteuid() == 0 {
		// The kernel reports twice the size set, for its bookkeeping.
		require.Equal(t, 8<<20, raised)
	}
	require.NoError(t, setReceiveBuffer(pc, 1<<20))
	require.Equal(t, raised, testsupport.ReceiveBuffer(t, pc), "a larger buffer is not lowered")
}
