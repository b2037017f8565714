package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
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
}

var udpJobs = sync.Pool{New: func() any {
	return &udpJob{buf: make([]byte, bufSize), reply: make([]byte, 0, bufSize)}
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
