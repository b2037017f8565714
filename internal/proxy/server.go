package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sync/errgroup"
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
	// ShutdownGrace is how long in-flight queries may take once Serve's
	// context is done. Default DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// OnGraceOver, when set, is called when ShutdownGrace has passed with
	// queries still in flight, as their context is cancelled. It ends work
	// that handlers wait for without watching that context: the cache's
	// upstream races, which coalesced queries share.
	OnGraceOver func()

	tcpConns atomic.Int64
	inflight sync.WaitGroup
	hctx     context.Context // handlers' context, cancelled after the grace
	stopping atomic.Bool
	mu       sync.Mutex
	conns    map[*tcpConn]struct{}
	jobs     chan *udpJob  // to idle workers; unbuffered
	idleStop chan struct{} // closed when Serve returns
}

// TCPConns returns the number of open TCP connections.
func (s *Server) TCPConns() int { return int(s.tcpConns.Load()) }

// Serve serves on the given sockets until ctx is done, then stops reading,
// lets in-flight queries finish within ShutdownGrace, and closes the
// sockets. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, pcs []net.PacketConn, lns []net.Listener) error {
	if s.Handler == nil {
		return errors.New("proxy: server has no handler")
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.TCPIdleTimeout <= 0 {
		s.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	if s.MaxTCPConns <= 0 {
		s.MaxTCPConns = DefaultMaxTCPConns
	}
	if s.TCPPipeline <= 0 {
		s.TCPPipeline = DefaultTCPPipeline
	}
	if s.ShutdownGrace <= 0 {
		s.ShutdownGrace = DefaultShutdownGrace
	}
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

// --- UDP ---

// udpListener reads one UDP socket. On a wildcard address it asks the
// kernel for each datagram's destination (IP_PKTINFO) and sends the reply
// from it, so clients see the reply come from the address they queried.
type udpListener struct {
	s        *Server
	conn     *net.UDPConn
	local    netip.AddrPort
	wildcard bool
	v6       bool
}

func newUDPListener(s *Server, pc net.PacketConn) (*udpListener, error) {
	c, ok := pc.(*net.UDPConn)
	if !ok {
		return nil, fmt.Errorf("proxy: %s: not a UDP socket", pc.LocalAddr())
	}
	if s.UDPReceiveBuffer > 0 {
		if err := setReceiveBuffer(c, s.UDPReceiveBuffer); err != nil {
			return nil, fmt.Errorf("proxy: %s: %w", c.LocalAddr(), err)
		}
	}
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	u := &udpListener{s: s, conn: c, local: local, wildcard: local.Addr().IsUnspecified()}
	if u.wildcard {
		u.v6 = local.Addr().Is6()
		var err error
		if u.v6 {
			err = ipv6.NewPacketConn(c).SetControlMessage(ipv6.FlagDst, true)
		} else {
			err = ipv4.NewPacketConn(c).SetControlMessage(ipv4.FlagDst, true)
		}
		if err != nil {
			return nil, fmt.Errorf("proxy: %s: enabling packet info: %w", local, err)
		}
	}
	return u, nil
}

// udpJob is one UDP query on its way through the handler: pooled, so a
// query costs no allocation in the listener.
type udpJob struct {
	u     *udpListener
	req   Request
	buf   []byte // query
	reply []byte
	oob   []byte
}

var udpJobs = sync.Pool{New: func() any {
	return &udpJob{buf: make([]byte, bufSize), reply: make([]byte, 0, bufSize), oob: make([]byte, 128)}
}}

func (u *udpListener) serve() error {
	fast, _ := u.s.Handler.(FastHandler)
	if !u.wildcard {
		return u.serveBatch(fast)
	}
	for {
		j := udpJobs.Get().(*udpJob)
		j.u = u
		var n, oobn int
		var from netip.AddrPort
		var err error
		if u.wildcard {
			n, oobn, _, from, err = u.conn.ReadMsgUDPAddrPort(j.buf[:cap(j.buf)], j.oob[:cap(j.oob)])
		} else {
			n, from, err = u.conn.ReadFromUDPAddrPort(j.buf[:cap(j.buf)])
		}
		if err != nil {
			udpJobs.Put(j)
			if u.s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Errors such as ICMP-induced ECONNREFUSED on some kernels
			// concern one datagram, not the socket.
			continue
		}
		j.req = Request{Msg: j.buf[:n], Client: from, Local: u.local, Received: time.Now()}
		j.oob = j.oob[:oobn]
		if u.wildcard {
			j.req.Local = netip.AddrPortFrom(u.dst(j.oob), u.local.Port())
		}
		if fast != nil {
			if reply, ok := fast.ServeFast(&j.req, j.reply[:0]); ok {
				j.send(reply)
				j.release(reply)
				continue
			}
		}
		u.s.dispatch(j)
	}
}

// workerIdle is how long an idle UDP worker waits for a query before it
// exits.
const workerIdle = 10 * time.Second

// dispatch runs j.serve on an idle worker, or on a new one when none is
// idle. Workers are reused because a goroutine per query would grow a
// fresh stack on every query (the upstream path needs more than a new
// goroutine's stack), which costs more than a tenth of a cache miss.
func (s *Server) dispatch(j *udpJob) {
	s.inflight.Add(1)
	select {
	case s.jobs <- j:
	default:
		go s.worker(j)
	}
}

func (s *Server) worker(j *udpJob) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		j.serve()
		t.Reset(workerIdle)
		select {
		case j = <-s.jobs:
		case <-t.C:
			return
		case <-s.idleStop:
			return
		}
	}
}

func (j *udpJob) serve() {
	defer j.u.s.inflight.Done()
	reply := j.u.s.Handler.ServeDNS(j.u.s.hctx, &j.req, j.reply[:0])
	j.send(reply)
	j.release(reply)
}

func (j *udpJob) send(reply []byte) {
	if reply == nil {
		return
	}
	u := j.u
	var err error
	if u.wildcard {
		var oob []byte
		if dst := j.req.Local.Addr(); dst.IsValid() {
			if u.v6 {
				oob = (&ipv6.ControlMessage{Src: dst.AsSlice()}).Marshal()
			} else {
				oob = (&ipv4.ControlMessage{Src: dst.AsSlice()}).Marshal()
			}
		}
		_, _, err = u.conn.WriteMsgUDPAddrPort(reply, oob, j.req.Client)
	} else {
		_, err = u.conn.WriteToUDPAddrPort(reply, j.req.Client)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		u.s.Logger.Debug("udp reply not sent", "client", j.req.Client, "err", err)
	}
}

// release returns the job to the pool, keeping a reply buffer that grew
// only if it stayed reasonable.
func (j *udpJob) release(reply []byte) {
	if cap(reply) >= bufSize && cap(reply) <= 4*bufSize {
		j.reply = reply[:0]
	}
	j.req = Request{}
	j.u = nil
	udpJobs.Put(j)
}

// dst returns the destination address of a datagram from its control
// message, invalid when absent.
func (u *udpListener) dst(oob []byte) netip.Addr {
	if u.v6 {
		var cm ipv6.ControlMessage
		if cm.Parse(oob) == nil && cm.Dst != nil {
			a, _ := netip.AddrFromSlice(cm.Dst)
			return a
		}
		return netip.Addr{}
	}
	var cm ipv4.ControlMessage
	if cm.Parse(oob) == nil && cm.Dst != nil {
		a, _ := netip.AddrFromSlice(cm.Dst.To4())
		return a
	}
	return netip.Addr{}
}

// --- TCP ---

func (s *Server) acceptTCP(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) ||
				errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				// Out of descriptors or an aborted handshake: back off
				// briefly instead of spinning, keep serving.
				s.Logger.Warn("tcp accept", "addr", ln.Addr(), "err", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("proxy: tcp accept on %s: %w", ln.Addr(), err)
		}
		if s.tcpConns.Add(1) > int64(s.MaxTCPConns) {
			s.tcpConns.Add(-1)
			c.Close()
			s.Logger.Debug("tcp connection limit reached; connection closed", "client", c.RemoteAddr(), "limit", s.MaxTCPConns)
			continue
		}
		tc := &tcpConn{s: s, conn: c, sem: make(chan struct{}, s.TCPPipeline)}
		s.mu.Lock()
		if s.stopping.Load() {
			s.mu.Unlock()
			s.tcpConns.Add(-1)
			c.Close()
			return nil
		}
		s.conns[tc] = struct{}{}
		s.mu.Unlock()
		s.inflight.Add(1)
		go tc.serve()
	}
}

// tcpConn is one client TCP connection: a reader that hands each query to
// its own goroutine, and serialized writes of whole length-prefixed
// replies.
type tcpConn struct {
	s    *Server
	conn net.Conn
	sem  chan struct{} // queries in flight on this connection
	wmu  sync.Mutex
	wbuf []byte
	dead bool // a write failed: stop writing
	wg   sync.WaitGroup
}

func (c *tcpConn) serve() {
	s := c.s
	defer s.inflight.Done()
	defer func() {
		c.wg.Wait()
		c.conn.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.tcpConns.Add(-1)
	}()
	var client, local netip.AddrPort
	if a, ok := c.conn.RemoteAddr().(*net.TCPAddr); ok {
		client = a.AddrPort()
	}
	if a, ok := c.conn.LocalAddr().(*net.TCPAddr); ok {
		local = a.AddrPort()
	}
	fast, _ := s.Handler.(FastHandler)
	var lenBuf [2]byte
	for {
		if s.stopping.Load() {
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(s.TCPIdleTimeout))
		if _, err := io.ReadFull(c.conn, lenBuf[:]); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !s.stopping.Load() && len(c.sem) > 0 {
				continue // not idle: replies are still being worked on
			}
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		msg := make([]byte, n)
		if _, err := io.ReadFull(c.conn, msg); err != nil {
			return
		}
		req := &Request{Msg: msg, Client: client, Local: local, TCP: true, Received: time.Now()}
		if fast != nil {
			if reply, ok := fast.ServeFast(req, make([]byte, 0, 512)); ok {
				c.write(reply)
				continue
			}
		}
		c.sem <- struct{}{}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer func() { <-c.sem }()
			c.write(s.Handler.ServeDNS(s.hctx, req, make([]byte, 0, 512)))
		}()
	}
}

// write sends one reply with its length prefix in a single write, so
// concurrent replies never interleave.
func (c *tcpConn) write(reply []byte) {
	if reply == nil {
		return
	}
	if len(reply) > 65535 {
		c.s.Logger.Error("tcp reply over 64 KiB dropped", "client", c.conn.RemoteAddr(), "size", len(reply))
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.dead {
		return
	}
	c.wbuf = append(c.wbuf[:0], byte(len(reply)>>8), byte(len(reply)))
	c.wbuf = append(c.wbuf, reply...)
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.s.TCPIdleTimeout))
	if _, err := c.conn.Write(c.wbuf); err != nil {
		c.dead = true
		// The reader notices the dead connection on its next read.
		_ = c.conn.SetReadDeadline(time.Unix(1, 0))
	}
	if cap(c.wbuf) > 4*bufSize {
		c.wbuf = nil
	}
}

// --- binding ---

// setReceiveBuffer raises c's receive buffer to size bytes: with
// SO_RCVBUFFORCE when the process has CAP_NET_ADMIN, so that
// net.core.rmem_max does not cap it, else with SO_RCVBUF, which the
// kernel silently caps. A buffer already as large (a socket unit's
// ReceiveBuffer=, which systemd forces) is left alone.
func setReceiveBuffer(c *net.UDPConn, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		// The kernel reports twice the size set (bookkeeping overhead).
		if cur, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF); err == nil && cur/2 >= size {
			return
		}
		if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size) == nil {
			return
		}
		if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size); err != nil {
			serr = os.NewSyscallError("setsockopt SO_RCVBUF", err)
		}
	}); err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	return serr
}

// linux IPV6_FREEBIND (not in package syscall).
const ipv6Freebind = 78

// listenConfig binds with SO_REUSEADDR (restart while old connections
// linger in TIME_WAIT) and IP_FREEBIND (bind an address that is not
// configured yet, so the service can start before its interface).
var listenConfig = net.ListenConfig{Control: func(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); serr != nil {
			serr = os.NewSyscallError("setsockopt SO_REUSEADDR", serr)
			return
		}
		if network == "udp6" || network == "tcp6" {
			if syscall.SetsockoptInt(int(fd), syscall.SOL_IPV6, ipv6Freebind, 1) == nil {
				return
			}
		}
		if err := syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1); err != nil {
			serr = os.NewSyscallError("setsockopt IP_FREEBIND", err)
		}
	})
	if err != nil {
		return err
	}
	return serr
}}

// Listen binds addr ("IP:port") for UDP and TCP with IP_FREEBIND.
func Listen(ctx context.Context, addr string) (*net.UDPConn, net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("proxy: listen address %q: %w", addr, err)
	}
	udpNet, tcpNet := "udp4", "tcp4"
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		udpNet, tcpNet = "udp6", "tcp6"
	}
	for attempt := 0; ; attempt++ {
		pc, err := listenConfig.ListenPacket(ctx, udpNet, addr)
		if err != nil {
			return nil, nil, fmt.Errorf("proxy: listen udp %s: %w", addr, err)
		}
		// With port 0, TCP takes the port the kernel gave UDP; that port
		// may be taken for TCP, so a few ports are tried.
		ln, err := listenConfig.Listen(ctx, tcpNet, pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			if ap.Port() == 0 && errors.Is(err, syscall.EADDRINUSE) && attempt < 20 {
				continue
			}
			return nil, nil, fmt.Errorf("proxy: listen tcp %s: %w", addr, err)
		}
		return pc.(*net.UDPConn), ln, nil
	}
}

// ListenAll binds every address; on error nothing stays bound.
func ListenAll(ctx context.Context, addrs []string) ([]net.PacketConn, []net.Listener, error) {
	var pcs []net.PacketConn
	var lns []net.Listener
	for _, a := range addrs {
		pc, ln, err := Listen(ctx, a)
		if err != nil {
			for _, p := range pcs {
				p.Close()
			}
			for _, l := range lns {
				l.Close()
			}
			return nil, nil, err
		}
		pcs = append(pcs, pc)
		lns = append(lns, ln)
	}
	return pcs, lns, nil
}
