package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

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
			return fmt.Errorf("server: tcp accept on %s: %w", ln.Addr(), err)
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
	s       *Server
	conn    net.Conn
	sem     chan struct{} // queries in flight on this connection
	pending atomic.Int32  // queries with a handler goroutine
	// lastReply is when a handler goroutine last finished (UnixNano):
	// the idle clock starts there or at the last byte read.
	lastReply atomic.Int64
	wmu       sync.Mutex
	wbuf      []byte
	dead      atomic.Bool // a write failed: stop writing and reading
	wg        sync.WaitGroup
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
		if !c.read(lenBuf[:]) {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		msg := make([]byte, n)
		if !c.read(msg) {
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
		c.pending.Add(1)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer func() { <-c.sem }()
			c.write(s.Handler.ServeDNS(s.hctx, req, make([]byte, 0, 512)))
			// Recorded before pending drops, so the reader never sees the
			// connection idle without this reply's time.
			c.lastReply.Store(time.Now().UnixNano())
			c.pending.Add(-1)
		}()
	}
}

// read fills p from the connection. A read deadline does not lose what
// was read before it: the connection is given up only when it is idle,
// that is with no query in flight and neither a byte read nor a reply
// finished for TCPIdleTimeout, or when the server stops reading, a write
// failed or the read failed.
func (c *tcpConn) read(p []byte) bool {
	s := c.s
	deadline := time.Now().Add(s.TCPIdleTimeout)
	for off := 0; off < len(p); {
		_ = c.conn.SetReadDeadline(deadline)
		// Checked after setting the deadline: Serve and write flag first
		// and then set a past deadline, which this one must not hide.
		if s.stopping.Load() || c.dead.Load() {
			return false
		}
		n, err := c.conn.Read(p[off:])
		off += n
		if n > 0 {
			deadline = time.Now().Add(s.TCPIdleTimeout) // progress restarts the idle clock
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return false
		}
		if c.pending.Load() > 0 {
			deadline = time.Now().Add(s.TCPIdleTimeout) // not idle: replies are being worked on
			continue
		}
		if end := time.Unix(0, c.lastReply.Load()).Add(s.TCPIdleTimeout); end.After(time.Now()) {
			deadline = end
			continue
		}
		return false
	}
	return true
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
	if c.dead.Load() {
		return
	}
	c.wbuf = append(c.wbuf[:0], byte(len(reply)>>8), byte(len(reply)))
	c.wbuf = append(c.wbuf, reply...)
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.s.TCPIdleTimeout))
	if _, err := c.conn.Write(c.wbuf); err != nil {
		c.dead.Store(true)
		// The reader notices the dead connection on its next read.
		_ = c.conn.SetReadDeadline(time.Unix(1, 0))
	}
	if cap(c.wbuf) > 4*bufSize {
		c.wbuf = nil
	}
}
