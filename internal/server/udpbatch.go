package server

import (
	"errors"
	"net"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpBatch is how many datagrams one recvmmsg/sendmmsg moves. System calls
// dominate the cost of a cache hit; batching them under load lets one core
// answer more queries. When the socket has one datagram waiting, a batch is
// that one datagram: batching adds no latency.
const udpBatch = 32

// batchConn is what ipv4.PacketConn and ipv6.PacketConn share (their
// Message types are both socket.Message).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// serveBatch is serve for a socket bound to one address (no per-datagram
// destination to track): it reads up to udpBatch datagrams per recvmmsg,
// answers those ServeFast takes (cache hits, local zone, refusals) and
// sends their replies with one sendmmsg, and hands the others to a
// goroutine each, as serve does.
func (u *udpListener) serveBatch(fast FastHandler) error {
	var bc batchConn = ipv4.NewPacketConn(u.conn)
	if u.local.Addr().Is6() && !u.local.Addr().Is4In6() {
		bc = ipv6.NewPacketConn(u.conn)
	}
	in := make([]ipv4.Message, udpBatch)
	out := make([]ipv4.Message, udpBatch)
	replies := make([][]byte, udpBatch)
	// One Request per slot, reused: ServeFast takes a pointer and returns
	// before the slot is read again, and a fresh one would escape to the
	// heap on every datagram.
	reqs := make([]Request, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, bufSize)}
		out[i].Buffers = make([][]byte, 1)
		replies[i] = make([]byte, 0, bufSize)
	}
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if u.s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue // concerns one datagram (ICMP-induced errors), not the socket
		}
		now := time.Now()
		nout := 0
		for i := range n {
			m := &in[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			req := &reqs[i]
			*req = Request{Msg: m.Buffers[0][:m.N], Client: ua.AddrPort(), Local: u.local, Received: now}
			if fast != nil {
				if reply, ok := fast.ServeFast(req, replies[i][:0]); ok {
					if reply != nil {
						if cap(reply) <= 4*bufSize {
							replies[i] = reply[:0]
						}
						out[nout].Buffers[0] = reply
						out[nout].Addr = m.Addr
						nout++
					}
					continue
				}
			}
			j := udpJobs.Get().(*udpJob)
			j.u = u
			j.req = *req
			j.req.Msg = j.buf[:copy(j.buf[:cap(j.buf)], req.Msg)]
			u.s.dispatch(j)
		}
		for sent := 0; sent < nout; {
			k, err := bc.WriteBatch(out[sent:nout], 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return nil
				}
				u.s.Logger.Debug("udp reply not sent", "client", out[sent+k].Addr, "err", err)
				k++ // skip the datagram that failed
			}
			sent += k
		}
	}
}
