package server

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// udpBatch is how many datagrams one recvmmsg/sendmmsg moves. System calls
// dominate the cost of a cache hit; batching them under load lets one core
// answer more queries. When the socket has one datagram waiting, a batch is
// that one datagram: batching adds no latency.
const udpBatch = 32

// serveBatch is serve for a socket bound to one address (no per-datagram
// destination to track): it reads up to udpBatch datagrams per recvmmsg,
// answers those ServeFast takes (cache hits, local zone, refusals) on this
// goroutine and sends their replies with one sendmmsg, and hands the
// others to a worker, as serve does. It waits for datagrams in the
// runtime's network poller, so a read deadline or a closed socket ends it.
func (u *udpListener) serveBatch(fast FastHandler) error {
	rc, err := u.conn.SyscallConn()
	if err != nil {
		return err
	}
	in := newMmsgBatch(udpBatch, bufSize)
	out := newMmsgBatch(udpBatch, 0)
	replies := make([][]byte, udpBatch)
	for i := range replies {
		replies[i] = make([]byte, 0, bufSize)
	}
	// One Request per slot, reused: ServeFast takes a pointer and returns
	// before the slot is read again, and a fresh one would escape to the
	// heap on every datagram.
	reqs := make([]Request, udpBatch)
	var n int
	var errno syscall.Errno
	read := func(fd uintptr) bool {
		n, errno = in.recv(fd)
		return errno != syscall.EAGAIN
	}
	var from, to int
	write := func(fd uintptr) bool {
		var k int
		k, errno = out.send(fd, from, to)
		if errno == syscall.EAGAIN {
			return false
		}
		if errno == 0 {
			from += k
		}
		return true
	}
	for {
		if err := rc.Read(read); err != nil {
			if u.s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		if errno != 0 {
			// EINTR, or an error that concerns one datagram
			// (ICMP-induced ECONNREFUSED), not the socket.
			continue
		}
		now := time.Now()
		nout := 0
		for i := range n {
			client := in.from(i)
			if !client.IsValid() {
				continue
			}
			req := &reqs[i]
			*req = Request{Msg: in.msg(i), Client: client, Local: u.local, Received: now}
			if fast != nil {
				if reply, ok := fast.ServeFast(req, replies[i][:0]); ok {
					if reply != nil {
						if cap(reply) <= 4*bufSize {
							replies[i] = reply[:0]
						}
						out.set(nout, reply, in, i)
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
		for from, to = 0, nout; from < to; {
			if err := rc.Write(write); err != nil {
				if errors.Is(err, net.ErrClosed) {
					return nil
				}
				break
			}
			if errno != 0 && errno != syscall.EINTR {
				u.s.Logger.Debug("udp reply not sent", "client", out.addr(from), "err", errno)
				from++ // skip the datagram that failed
			}
		}
	}
}
