package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/spartan-dns/spartan/internal/dnswire"
)

// bufPool holds UDP read buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// newID returns a leg's query ID. math/rand/v2's top-level functions use
// the runtime's per-thread ChaCha8 generator seeded from the operating
// system's entropy: unpredictable to an off-path spoofer, lock-free and a
// few nanoseconds per call.
func newID() uint16 { return uint16(rand.Uint32()) }

// socket returns a fresh non-blocking UDP socket connected to u, made
// with raw system calls (net.DialUDP adds setsockopt, getsockname,
// getpeername, an fcntl and two epoll_ctl calls, and address formatting).
func (u *Upstream) socket() (int, error) {
	fd, err := syscall.Socket(u.family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("udp socket: %w", os.NewSyscallError("socket", err))
	}
	// connect picks a random ephemeral source port and makes the kernel
	// drop datagrams from any other source.
	if e := rawConnect(fd, u.rawPtr, u.rawLen); e != 0 {
		rawClose(fd)
		return -1, fmt.Errorf("udp connect %s: %w", u.str, os.NewSyscallError("connect", e))
	}
	return fd, nil
}

// exchangeUDP sends the query on a fresh connected UDP socket (the kernel
// picks a random source port and drops datagrams from any other source)
// and reads until a reply passes check or the leg ends.
func (r *race) exchangeUDP(l *leg) ([]byte, verdict, error) {
	if l.isCancelled() {
		return nil, failure, errLegCancelled
	}
	fd, err := l.u.socket()
	if err != nil {
		return nil, failure, err
	}
	defer rawClose(fd)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	id := newID()
	n := copy(buf, r.query)
	binary.BigEndian.PutUint16(buf, id)
	// Each leg has its own casing (DNS 0x20), as it has its own ID and
	// port: a reply forged for one leg fits no other. The question as sent
	// is kept aside, buf being reused for reading.
	question, exact := r.question, l.u.CaseRandomized()
	var sent [dnswire.MaxNameLen + 4]byte
	if exact {
		q := buf[headerLen : headerLen+len(r.question)]
		randomizeCase(q)
		question = sent[:copy(sent[:], q)]
	}
	for {
		_, e := rawWrite(fd, buf[:n])
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return nil, failure, r.netErr(l, "udp write", os.NewSyscallError("write", e))
		}
		break
	}
	// Registered after the write: a reply that is already there is
	// reported at once by epoll_ctl, and no read is wasted before it.
	ready, err := r.g.poll.add(fd)
	if err != nil {
		return nil, failure, err
	}
	defer r.g.poll.remove(fd, ready)
	for {
		select {
		case <-ready:
		case <-r.ctx.Done():
			return nil, failure, r.ended()
		case <-r.stop:
			return nil, failure, r.ended()
		}
		for {
			n, e := rawRead(fd, buf)
			if e == syscall.EINTR {
				continue
			}
			if e == syscall.EAGAIN {
				break // a stale wake-up, or only spoofs so far: wait again
			}
			if e != 0 {
				// ECONNREFUSED: ICMP port unreachable, nobody listens.
				return nil, failure, r.netErr(l, "udp read", os.NewSyscallError("read", e))
			}
			var v verdict
			if n < len(buf) {
				v = check(buf[:n], id, question, exact)
			} else if v = match(buf[:n], id, question, exact); v == answer {
				// Possibly cut by our buffer, so its records are not
				// checked: only TCP gets it whole.
				v = truncated
				if !r.tcp {
					return r.exchangeTCP(l)
				}
			}
			switch v {
			case mismatch:
				continue
			case caseMismatch:
				return r.confirmCase(l)
			}
			return append([]byte(nil), buf[:n]...), v, nil
		}
	}
}

// confirmCase is a UDP leg's response to a caseMismatch reply: one that
// matches the leg in everything but the case of its question's letters.
// It comes either from an upstream that normalises case (it then never
// echoes 0x20) or from a spoofer who guessed the leg's ID and port but not
// its casing. Taking it as proof of the former would let such a spoofer
// turn 0x20 off for the upstream with one lucky guess and poison the cache
// with the next; failing the leg would fail every leg to an upstream that
// normalises. So the leg asks again over TCP, which an off-path spoofer
// cannot answer (it would have to guess the connection's sequence
// numbers): a TCP reply in another case proves that the upstream
// normalises, and only then is 0x20 turned off for it (exchangeTCP); a TCP
// reply in our case means the UDP one was forged, and the TCP answer is
// used.
//
// The tradeoff: a spoofer who matches ID and port now costs the leg a TCP
// exchange instead of poisoning the cache, which is no more than it could
// do before (a forged SERVFAIL fails the leg); an upstream that
// normalises case and serves no TCP (RFC 7766 requires it to) fails such
// legs and ends up unhealthy. An on-path attacker sees the query and its
// casing, and is beyond the reach of 0x20.
func (r *race) confirmCase(l *leg) ([]byte, verdict, error) { return r.exchangeTCP(l) }

// exchangeTCP sends the query over a new TCP connection to the leg's
// upstream and reads replies until one passes check. A reply that differs
// from the question sent only in case turns 0x20 off for the upstream and
// is then taken.
func (r *race) exchangeTCP(l *leg) ([]byte, verdict, error) {
	// Cancellation unblocks the connection through its deadline.
	defer context.AfterFunc(r.ctx, l.cancel)()
	d := net.Dialer{Deadline: r.deadline}
	c, err := d.DialContext(r.ctx, "tcp", l.u.str)
	if err != nil {
		return nil, failure, r.netErr(l, "tcp connect", err)
	}
	defer c.Close()
	if !l.attach(c) {
		return nil, failure, errLegCancelled
	}
	defer l.detach()
	if err := c.SetDeadline(r.deadline); err != nil {
		return nil, failure, err
	}
	id := newID()
	out := make([]byte, 2+len(r.query))
	binary.BigEndian.PutUint16(out, uint16(len(r.query)))
	copy(out[2:], r.query)
	binary.BigEndian.PutUint16(out[2:], id)
	question, exact := out[2+headerLen:2+headerLen+len(r.question)], l.u.CaseRandomized()
	if exact {
		randomizeCase(question)
	}
	if _, err := c.Write(out); err != nil {
		return nil, failure, r.netErr(l, "tcp write", err)
	}
	var lenBuf [2]byte
	for {
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return nil, failure, r.netErr(l, "tcp read", err)
		}
		msg := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return nil, failure, r.netErr(l, "tcp read", err)
		}
		v := check(msg, id, question, exact)
		if v == caseMismatch {
			// A blind spoofer cannot answer over TCP: the upstream itself
			// normalises case.
			l.u.caseFallback(r.g.obs)
			exact = false
			v = check(msg, id, question, exact)
		}
		switch v {
		case mismatch:
			continue
		case truncated:
			// TC over TCP is meaningless; relay what came.
			return msg, answer, nil
		default:
			return msg, v, nil
		}
	}
}

// netErr maps a socket error to the leg's deadline, its cancellation or a
// network failure. The deadline is checked first: when the race deadline
// passes, the coordinator cancels the legs too, and a timeout must count
// against the upstream's health while a cancellation does not.
func (r *race) netErr(l *leg, op string, err error) error {
	switch {
	case !time.Now().Before(r.deadline):
		return errLegTimeout
	case l.isCancelled():
		return errLegCancelled
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errLegTimeout
	}
	return fmt.Errorf("%s: %w", op, err)
}

// ended is the error of a leg whose race is over: a timeout when the
// deadline has passed (it counts against the upstream), a cancellation
// otherwise (another leg won, or the caller gave up).
func (r *race) ended() error {
	if !time.Now().Before(r.deadline) {
		return errLegTimeout
	}
	return errLegCancelled
}
