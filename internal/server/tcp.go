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

	"github.com/spartan-dns/spartan/internal/dnswire"
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
	client  netip.AddrPort
	local   netip.AddrPort
	sem     chan struct{} // pipeline slots: queries between read and reply
	pending atomic.Int32  // queries with a handler goroutine
	// lastReply is when a handler goroutine last finished (UnixNano):
	// the idle clock starts there or at the last byte read.
	lastReply atomic.Int64
	wmu       sync.Mutex
	wbuf      []byte
	dead      atomic.Bool // a write failed: stop writing and reading
	wg        sync.WaitGroup
}

// smallMsg is the size of the pooled TCP query buffers: a stub's query
// (header, a name of typical length, OPT, perhaps padded to a 128-byte
// block as RFC 8467 recommends) fits; a larger frame gets a buffer of its
// own size.
const smallMsg = 128

// replyBuf is the initial capacity of a TCP query's reply buffer; the
// handler grows it when needed.
const replyBuf = 512

// tcpQuery is one TCP query from read to reply. Pooled with its buffers,
// so a query answered on the fast path costs the listener no allocation.
type tcpQuery struct {
	c     *tcpConn
	req   Request
	small [smallMsg]byte
	held  int64 // bytes of the server's budget this query holds
	reply []byte
}

var tcpQueries = sync.Pool{New: func() any {
	return &tcpQuery{reply: make([]byte, 0, replyBuf)}
}}

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
	if a, ok := c.conn.RemoteAddr().(*net.TCPAddr); ok {
		c.client = a.AddrPort()
	}
	if a, ok := c.conn.LocalAddr().(*net.TCPAddr); ok {
		c.local = a.AddrPort()
	}
	fast, _ := s.Handler.(FastHandler)
	var prefix [2]byte
	for {
		if !c.read(prefix[:]) {
			return
		}
		n := int(binary.BigEndian.Uint16(prefix[:]))
		if n > s.TCPMaxMessage {
			if !c.skip(n) {
				return
			}
			continue
		}
		q, ok := c.hold(n)
		if !ok {
			return
		}
		if !c.read(q.req.Msg) {
			q.release(nil)
			return
		}
		q.req.Received = time.Now()
		if fast != nil {
			if reply, ok := fast.ServeFast(&q.req, q.reply[:0]); ok {
				c.write(reply)
				q.release(reply)
				continue
			}
		}
		c.pending.Add(1)
		c.wg.Add(1)
		go q.serve()
	}
}

// hold waits for a pipeline slot and then for the server's budget to
// cover the buffer of an n-byte message (smallMsg at least), and returns a
// query whose Msg is that n-byte buffer. Waiting here
// is the back-pressure: the connection is not read meanwhile. ok is false
// when the server stops reading first.
func (c *tcpConn) hold(n int) (q *tcpQuery, ok bool) {
	s := c.s
	select {
	case c.sem <- struct{}{}:
	case <-s.rctx.Done():
		return nil, false
	}
	size := int64(max(n, smallMsg))
	if err := s.budget.Acquire(s.rctx, size); err != nil {
		<-c.sem
		return nil, false
	}
	s.held.Add(size)
	q = tcpQueries.Get().(*tcpQuery)
	q.c, q.held = c, size
	var msg []byte
	if n <= smallMsg {
		msg = q.small[:n]
	} else {
		msg = make([]byte, n)
	}
	q.req = Request{Msg: msg, Client: c.client, Local: c.local, TCP: true}
	return q, true
}

func (q *tcpQuery) serve() {
	c := q.c
	defer c.wg.Done()
	reply := c.s.Handler.ServeDNS(c.s.hctx, &q.req, q.reply[:0])
	c.write(reply)
	// Recorded before pending drops, so the reader never sees the
	// connection idle without this reply's time.
	c.lastReply.Store(time.Now().UnixNano())
	c.pending.Add(-1)
	q.release(reply)
}

// release gives back what hold took, once reply has been written; the
// reply buffer is kept for the next query if it stayed reasonable.
func (q *tcpQuery) release(reply []byte) {
	c := q.c
	c.s.held.Add(-q.held)
	c.s.budget.Release(q.held)
	<-c.sem
	if cap(reply) >= replyBuf && cap(reply) <= 4*bufSize {
		q.reply = reply[:0]
	}
	q.c, q.req, q.held = nil, Request{}, 0
	tcpQueries.Put(q)
}

// skip answers an n-byte frame over TCPMaxMessage without holding it:
// FORMERR built from its header (nothing when it is a response), then the
// rest of the frame is read and dropped. It returns false when the
// connection is done.
func (c *tcpConn) skip(n int) bool {
	q := tcpQueries.Get().(*tcpQuery)
	defer tcpQueries.Put(q)
	hdr := q.small[:min(n, dnswire.HeaderLen)]
	if !c.read(hdr) {
		return false
	}
	c.s.oversize.Add(1)
	c.s.Logger.Debug("tcp message over the size cap skipped", "client", c.client, "size", n, "cap", c.s.TCPMaxMessage)
	c.write(dnswire.AppendFormErr(q.reply[:0], hdr, false))
	scratch := q.reply[:cap(q.reply)] // the reply is written: reuse its buffer
	for rest := n - len(hdr); rest > 0; {
		chunk := scratch[:min(rest, len(scratch))]
		if !c.read(chunk) {
			return false
		}
		rest -= len(chunk)
	}
	return true
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
