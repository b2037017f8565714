package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpListener reads one UDP socket. On a wildcard address it asks the
// kernel for each datagram's destination (IP_PKTINFO) and sends the reply
// from it, so clients see the reply come from the address they queried.
type udpListener struct {
	s        *Server
	conn     *net.UDPConn
	rc       syscall.RawConn
	local    netip.AddrPort
	wildcard bool
	v6       bool
}

func newUDPListener(s *Server, pc net.PacketConn) (*udpListener, error) {
	c, ok := pc.(*net.UDPConn)
	if !ok {
		return nil, fmt.Errorf("server: %s: not a UDP socket", pc.LocalAddr())
	}
	if s.UDPReceiveBuffer > 0 {
		if err := setReceiveBuffer(c, s.UDPReceiveBuffer); err != nil {
			return nil, fmt.Errorf("server: %s: %w", c.LocalAddr(), err)
		}
	}
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("server: %s: %w", local, err)
	}
	u := &udpListener{s: s, conn: c, rc: rc, local: local, wildcard: local.Addr().IsUnspecified(),
		v6: local.Addr().Is6() && !local.Addr().Is4In6()}
	if u.wildcard {
		if u.v6 {
			err = ipv6.NewPacketConn(c).SetControlMessage(ipv6.FlagDst, true)
		} else {
			err = ipv4.NewPacketConn(c).SetControlMessage(ipv4.FlagDst, true)
		}
		if err != nil {
			return nil, fmt.Errorf("server: %s: enabling packet info: %w", local, err)
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
	out   *mmsgBatch // one slot, to send the reply
}

var udpJobs = sync.Pool{New: func() any {
	return &udpJob{buf: make([]byte, bufSize), reply: make([]byte, 0, bufSize), out: newMmsgBatch(1, 0, true)}
}}

func (u *udpListener) serve() error {
	fast, _ := u.s.Handler.(FastHandler)
	return u.serveBatch(fast)
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

// send sends a worker's reply with a raw sendmmsg of one datagram, for
// the reason the listener's batches are raw (see mmsgBatch.recv).
func (j *udpJob) send(reply []byte) {
	if reply == nil {
		return
	}
	u := j.u
	var src netip.Addr
	if u.wildcard {
		src = j.req.Local.Addr()
	}
	j.out.setAddr(0, reply, j.req.Client, u.v6, src)
	var errno syscall.Errno
	err := u.rc.Write(func(fd uintptr) bool {
		for {
			if _, errno = j.out.send(fd, 0, 1); errno != syscall.EINTR {
				return errno != syscall.EAGAIN
			}
		}
	})
	j.out.bufs[0] = nil
	if err == nil && errno != 0 {
		err = errno
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
