// Package server is spartan's DNS listener layer, shared by the node's
// forwarding proxy and master mode's authoritative server: UDP sockets
// read in batches (recvmmsg/sendmmsg) with replies sent from the address
// queried, TCP connections carrying pipelined queries answered out of
// order, sockets bound with IP_FREEBIND (and with SO_REUSEPORT when
// several UDP sockets serve one address, one per core), a connection cap,
// an idle timeout, and a graceful shutdown. It knows nothing of DNS beyond
// framing: a Handler answers each message in wire format, and a
// FastHandler answers what needs no waiting on the read goroutine itself.
//
// TCP holds a bounded amount of memory whatever clients send:
//
//   - A message longer than TCPMaxMessage (DefaultTCPMaxMessage, 4096
//     bytes: a stub's query with one question and an OPT record needs a
//     few hundred) is never buffered: the listener answers FORMERR itself
//     (ID, opcode and RD copied from the header, RA clear; a response gets
//     no reply), reads the rest of the frame into a small scratch buffer
//     and goes on with the next frame on the same connection.
//   - Each query is read into a buffer sized to its frame (frames up to 128
//     bytes share pooled buffers of that size) and accounted, at that
//     buffer's capacity, against a server-wide budget of TCPHeldBytes
//     (DefaultTCPHeldBytes, 8 MiB) until its reply has been written. When
//     the budget is spent, connections are not read until replies free it:
//     back-pressure through TCP's own flow control, never a queue.
//     HeldBytes reports the account.
//   - TCPPipeline bounds the queries in flight on one connection, so one
//     connection holds at most TCPPipeline × TCPMaxMessage bytes of queries.
//
// The idle timeout counts only while a connection is idle: nothing in
// flight and no byte received for TCPIdleTimeout. A frame cut by a read
// deadline is kept and completed by the next read, so a query pending
// upstream never breaks the framing of the next one; each byte read
// restarts the clock, and a partial frame that makes no progress for
// TCPIdleTimeout with nothing in flight is closed like an idle connection.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// Request is one DNS message received by a Server.
type Request struct {
	// Msg is the raw message. It is only valid during the handler call.
	Msg []byte
	// Client is the sender's address.
	Client netip.AddrPort
	// Local is the address the message was sent to.
	Local netip.AddrPort
	// TCP reports a message that came over TCP.
	TCP bool
	// Received is when the message was read.
	Received time.Time
}

// Handler answers DNS messages in wire format. The listener layer knows
// nothing about DNS beyond framing; the forwarding query path, a cache's
// fast path and master mode's authoritative server all sit behind it.
type Handler interface {
	// ServeDNS appends the reply to req to dst[:0] and returns it; nil
	// means no reply at all. It may block (an upstream race); ctx ends
	// when the server's shutdown grace period is over.
	ServeDNS(ctx context.Context, req *Request, dst []byte) []byte
}

// FastHandler is optionally implemented by a Handler that can answer some
// messages without blocking (a cache hit, a local zone, a refusal). The
// listener calls ServeFast on its read goroutine first and starts a
// goroutine for ServeDNS only when ServeFast returns ok false.
type FastHandler interface {
	ServeFast(req *Request, dst []byte) (reply []byte, ok bool)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request, dst []byte) []byte

// ServeDNS calls f.
func (f HandlerFunc) ServeDNS(ctx context.Context, req *Request, dst []byte) []byte {
	return f(ctx, req, dst)
}

// Server defaults.
const (
	DefaultTCPIdleTimeout = 10 * time.Second
	DefaultMaxTCPConns    = 1024
	DefaultShutdownGrace  = 2 * time.Second
	// DefaultTCPPipeline bounds the queries in flight on one TCP
	// connection; beyond it the server stops reading that connection
	// until one is answered (TCP back-pressure, no unbounded queue).
	DefaultTCPPipeline = 64
	// DefaultTCPMaxMessage is the largest message accepted over TCP, in
	// bytes. A stub's query (one question, an OPT record, perhaps a
	// cookie or padding to a 128-byte block) needs a few hundred; larger
	// ones are answered FORMERR without being buffered.
	DefaultTCPMaxMessage = 4096
	// DefaultTCPHeldBytes is the server-wide budget of TCP query bytes
	// held between read and reply. It bounds what large queries can pin
	// (2048 queries at DefaultTCPMaxMessage) and never holds back small
	// ones at the defaults: DefaultMaxTCPConns × DefaultTCPPipeline
	// queries in 128-byte buffers take exactly this much.
	DefaultTCPHeldBytes = 8 << 20
)

// bufSize is the capacity of pooled message buffers: larger than any sane
// query; replies that need more grow their buffer.
const bufSize = 4096

// Server serves DNS over UDP and TCP sockets with its own listeners:
// UDP replies leave from the address the query was sent to, and TCP
// connections carry pipelined queries answered concurrently (replies may
// go out of order, as RFC 7766 allows). Fill in the fields, then call
// Serve.
type Server struct {
	Handler Handler
	Logger  *slog.Logger
	// TCPIdleTimeout closes a TCP connection with nothing in flight and
	// nothing received for this long. Default DefaultTCPIdleTimeout.
	TCPIdleTimeout time.Duration
	// MaxTCPConns caps open TCP connections; a connection beyond it is
	// closed at once. Default DefaultMaxTCPConns.
	MaxTCPConns int
	// UDPReceiveBuffer, when positive, is set as the receive buffer of
	// every UDP socket served (see config.Config.UDPReceiveBuffer).
	UDPReceiveBuffer int
	// TCPPipeline caps queries in flight per TCP connection. Default
	// DefaultTCPPipeline.
	TCPPipeline int
	// TCPMaxMessage is the largest TCP message handed to the Handler;
	// longer ones are answered FORMERR and skipped. Default
	// DefaultTCPMaxMessage.
	TCPMaxMessage int
	// TCPHeldBytes bounds the bytes of TCP queries held, across all
	// connections, from read to reply; when it is spent, reading waits.
	// Default DefaultTCPHeldBytes; raised to the largest buffer one
	// query can take, so that any accepted query fits.
	TCPHeldBytes int64
	// ShutdownGrace is how long in-flight queries may take once Serve's
	// context is done. Default DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// OnGraceOver, when set, is called when ShutdownGrace has passed with
	// queries still in flight, as their context is cancelled. It ends work
	// that handlers wait for without watching that context: the cache's
	// upstream races, which coalesced queries share.
	OnGraceOver func()

	tcpConns atomic.Int64
	oversize atomic.Uint64 // TCP messages over TCPMaxMessage
	inflight sync.WaitGroup
	rctx     context.Context     // readers' context, done when reading stops
	hctx     context.Context     // handlers' context, cancelled after the grace
	budget   *semaphore.Weighted // TCPHeldBytes
	held     atomic.Int64        // bytes acquired from budget
	stopping atomic.Bool
	mu       sync.Mutex
	conns    map[*tcpConn]struct{}
	jobs     chan *udpJob  // to idle workers; unbuffered
	idleStop chan struct{} // closed when Serve returns
}

// TCPConns returns the number of open TCP connections.
func (s *Server) TCPConns() int { return int(s.tcpConns.Load()) }

// HeldBytes returns the bytes of TCP queries held between read and reply,
// accounted against TCPHeldBytes.
func (s *Server) HeldBytes() int64 { return s.held.Load() }

// Oversized returns the number of TCP messages longer than TCPMaxMessage
// that were answered FORMERR and skipped without reaching the Handler.
func (s *Server) Oversized() uint64 { return s.oversize.Load() }

// Serve serves on the given sockets until ctx is done, then stops reading,
// lets in-flight queries finish within ShutdownGrace, and closes the
// sockets. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, pcs []net.PacketConn, lns []net.Listener) error {
	if s.Handler == nil {
		return errors.New("server: no handler")
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	orDefault(&s.TCPIdleTimeout, DefaultTCPIdleTimeout)
	orDefault(&s.MaxTCPConns, DefaultMaxTCPConns)
	orDefault(&s.TCPPipeline, DefaultTCPPipeline)
	orDefault(&s.ShutdownGrace, DefaultShutdownGrace)
	orDefault(&s.TCPMaxMessage, DefaultTCPMaxMessage)
	orDefault(&s.TCPHeldBytes, DefaultTCPHeldBytes)
	s.TCPHeldBytes = max(s.TCPHeldBytes, int64(s.TCPMaxMessage), smallMsg)
	s.budget = semaphore.NewWeighted(s.TCPHeldBytes)
	s.rctx = ctx
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	s.hctx = hctx
	s.conns = make(map[*tcpConn]struct{})
	s.jobs = make(chan *udpJob)
	s.idleStop = make(chan struct{})
	defer close(s.idleStop) // idle workers exit; busy ones are in inflight

	var readers errgroup.Group
	var udps []*udpListener
	for _, pc := range pcs {
		u, err := newUDPListener(s, pc)
		if err != nil {
			return err
		}
		udps = append(udps, u)
		readers.Go(u.serve)
	}
	for _, ln := range lns {
		readers.Go(func() error { return s.acceptTCP(ln) })
	}

	<-ctx.Done()
	s.stopping.Store(true)
	// Stop reading: new queries are no longer accepted, sockets stay open
	// for the replies still to come.
	for _, u := range udps {
		_ = u.conn.SetReadDeadline(time.Unix(1, 0))
	}
	for _, ln := range lns {
		ln.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		_ = c.conn.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
	rerr := readers.Wait()

	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.ShutdownGrace):
		s.Logger.Warn("shutdown grace period over; cancelling queries still in flight", "grace", s.ShutdownGrace)
		cancelHandlers()
		if s.OnGraceOver != nil {
			s.OnGraceOver()
		}
		<-done
	}
	s.mu.Lock()
	for c := range s.conns {
		c.conn.Close()
	}
	s.mu.Unlock()
	for _, pc := range pcs {
		pc.Close()
	}
	return rerr
}

// orDefault sets *v to def unless it is positive: a zero Server field
// means its default.
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
