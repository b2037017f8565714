package server

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// udpBatch is how many datagrams one recvmmsg/sendmmsg moves. System calls
// dominate the cost of a cache hit; batching them under load lets one core
// answer more queries. When the socket has one datagram waiting, a batch is
// that one datagram: batching adds no latency.
const udpBatch = 32

// udpReader is the state of one socket's read loop: the batches moved by
// recvmmsg and sendmmsg, the reply buffers and the requests, all reused.
type udpReader struct {
	u    *udpListener
	fast FastHandler
	in   *mmsgBatch
	out  *mmsgBatch
	// replies[i] is the buffer slot i's reply is built in.
	replies [][]byte
	// One Request per slot, reused: ServeFast takes a pointer and returns
	// before the slot is read again, and a fresh one would escape to the
	// heap on every datagram.
	reqs []Request
	// Replies out[from:to] are still to be sent.
	from, to int
	errno    syscall.Errno // of the last recvmmsg or sendmmsg
}

// serveBatch serves the socket: it reads up to udpBatch datagrams per
// recvmmsg, answers those ServeFast takes (cache hits, local zone,
// refusals) on this goroutine and sends their replies with one sendmmsg,
// and hands the others to a worker. On a wildcard socket each datagram's
// destination comes with it (IP_PKTINFO) and its reply leaves from that
// address. It waits for datagrams in the runtime's network poller, so a
// read deadline or a closed socket ends it.
//
// A wake-up costs one recvmmsg, not two: the batch is answered inside the
// poller's read callback, and when recvmmsg returned fewer datagrams than
// it could take, the socket was empty, so the callback asks the poller to
// park at once instead of trying another read first. Nothing is missed:
// the poller forgets readiness only before the callback runs, so a
// datagram that arrived meanwhile makes the wait return at once.
func (u *udpListener) serveBatch(fast FastHandler) error {
	rc, err := u.conn.SyscallConn()
	if err != nil {
		return err
	}
	r := &udpReader{
		u: u, fast: fast,
		in:      newMmsgBatch(udpBatch, bufSize, u.wildcard),
		out:     newMmsgBatch(udpBatch, 0, u.wildcard),
		replies: make([][]byte, udpBatch),
		reqs:    make([]Request, udpBatch),
	}
	for i := range r.replies {
		r.replies[i] = make([]byte, 0, bufSize)
	}
	read, write := r.read, r.write
	for {
		if err := rc.Read(read); err != nil {
			if u.s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		// The callback returned for a read error or a reply it could not
		// send: the socket's send buffer is full.
		for r.from < r.to {
			if err := rc.Write(write); err != nil {
				if errors.Is(err, net.ErrClosed) {
					return nil
				}
				break
			}
		}
		r.from, r.to = 0, 0
	}
}

// read is the poller's read callback: it reads a batch, answers it and
// sends the replies. It returns false to wait for the next datagram, true
// to return to serveBatch (an error, or replies left to send).
func (r *udpReader) read(fd uintptr) bool {
	var n int
	n, r.errno = r.in.recv(fd)
	switch r.errno {
	case 0:
	case syscall.EAGAIN:
		return false
	default:
		// EINTR, or an error that concerns one datagram (an
		// ICMP-induced ECONNREFUSED), not the socket.
		return true
	}
	r.answer(n)
	for r.from < r.to {
		if !r.write(fd) {
			return true // send buffer full: wait for room in serveBatch
		}
	}
	// A full batch may have left more datagrams waiting: read again at
	// once. Fewer means the socket was empty.
	return n == udpBatch
}

// answer serves the n datagrams read, queueing the replies of those
// ServeFast answers in out[:to] and dispatching the rest to workers.
func (r *udpReader) answer(n int) {
	u, in := r.u, r.in
	now := time.Now()
	nout := 0
	for i := range n {
		client := in.from(i)
		if !client.IsValid() {
			continue
		}
		req := &r.reqs[i]
		*req = Request{Msg: in.msg(i), Client: client, Local: u.local, Received: now}
		if u.wildcard {
			req.Local = netip.AddrPortFrom(in.dst(i), u.local.Port())
		}
		if r.fast != nil {
			if reply, ok := r.fast.ServeFast(req, r.replies[i][:0]); ok {
				if reply != nil {
					if cap(reply) <= 4*bufSize {
						r.replies[i] = reply[:0]
					}
					r.out.set(nout, reply, in, i, req.Local.Addr())
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
	r.from, r.to = 0, nout
}

// write sends what is left of out[from:to] with one sendmmsg; it returns
// false when the send buffer is full. A datagram the kernel refuses is
// skipped.
func (r *udpReader) write(fd uintptr) bool {
	var k int
	k, r.errno = r.out.send(fd, r.from, r.to)
	switch r.errno {
	case 0:
		r.from += k
	case syscall.EAGAIN:
		return false
	case syscall.EINTR:
	default:
		r.u.s.Logger.Debug("udp reply not sent", "client", r.out.addr(r.from), "err", r.errno)
		r.from++
	}
	return true
}
