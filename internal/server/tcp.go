package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
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
