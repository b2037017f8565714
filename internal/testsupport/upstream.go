package testsupport

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Behavior is how an Upstream treats the queries it receives. It applies
// on top of the handler: Answer relays the handler's reply, the others
// replace or decorate it.
type Behavior int32

// The behaviours of an Upstream.
const (
	// Answer replies with the handler's response.
	Answer Behavior = iota
	// Blackhole reads queries and never replies: a dead or partitioned
	// server as a client sees it.
	Blackhole
	// ServFail replies SERVFAIL.
	ServFail
	// Refused replies REFUSED.
	Refused
	// NotImp replies NOTIMP.
	NotImp
	// FormErr replies FORMERR.
	FormErr
	// Garbage replies with bytes that carry the query's ID and the QR bit
	// but do not parse as a DNS message.
	Garbage
	// Truncate replies over UDP with TC set and an empty answer section,
	// and with the handler's full response over TCP.
	Truncate
	// WrongID first sends a forged reply (answer ForgedIP) carrying another
	// ID, then the real one.
	WrongID
	// WrongQuestion first sends a forged reply (answer ForgedIP) with the
	// right ID for another name, then the real one.
	WrongQuestion
	// WrongSource first sends a forged reply (answer ForgedIP, right ID
	// and question) from another UDP socket of the same address, then the
	// real one. Over TCP it behaves like Answer.
	WrongSource
	// WrongIDOnly sends only the forged reply of WrongID.
	WrongIDOnly
	// WrongQuestionOnly sends only the forged reply of WrongQuestion.
	WrongQuestionOnly
	// WrongSourceOnly sends only the forged reply of WrongSource (UDP);
	// over TCP it never replies.
	WrongSourceOnly
	// WrongCase first sends over UDP a forged reply (answer ForgedIP)
	// with the right ID and question but every letter of the name in the
	// other case, as a spoofer who guessed ID and port but not the DNS
	// 0x20 casing would, then the real one. Over TCP, which a blind
	// spoofer cannot reach, it behaves like Answer.
	WrongCase
)

var behaviorNames = [...]string{"Answer", "Blackhole", "ServFail", "Refused", "NotImp", "FormErr",
	"Garbage", "Truncate", "WrongID", "WrongQuestion", "WrongSource", "WrongIDOnly",
	"WrongQuestionOnly", "WrongSourceOnly", "WrongCase"}

// String returns the constant's name.
func (b Behavior) String() string {
	if b >= 0 && int(b) < len(behaviorNames) {
		return behaviorNames[b]
	}
	return "Behavior(?)"
}

// DefaultIP is the address the default handler answers every A question
// with; ForgedIP is the address in every forged (spoofed) reply, so a test
// can tell a spoof that got through.
var (
	DefaultIP = netip.MustParseAddr("192.0.2.1")
	ForgedIP  = netip.MustParseAddr("203.0.113.66")
)

// UpstreamOption configures StartUpstream.
type UpstreamOption func(*Upstream)

// WithAddr sets the host:port to serve on (default "127.0.0.1:0": a free
// port, the same for UDP and TCP).
func WithAddr(addr string) UpstreamOption { return func(u *Upstream) { u.addr = addr } }

// WithLatency delays every reply by d (each query independently: a slow
// reply never holds up the next query).
func WithLatency(d time.Duration) UpstreamOption {
	return func(u *Upstream) { u.latency.Store(int64(d)) }
}

// WithBehavior sets the initial behaviour (default Answer).
func WithBehavior(b Behavior) UpstreamOption { return func(u *Upstream) { u.behavior.Store(int32(b)) } }

// WithHandler replaces the default handler. It is called concurrently, on
// a goroutine of its own per query, so it may block (it must return for
// Stop to); a nil reply means no reply at all.
func WithHandler(h func(req *dns.Msg) *dns.Msg) UpstreamOption {
	return func(u *Upstream) { u.handler = h }
}

// WithTTL sets the TTL of the default handler's records (default 60).
func WithTTL(ttl uint32) UpstreamOption { return func(u *Upstream) { u.ttl = ttl } }

// Upstream is a fake DNS server on loopback serving UDP and TCP on one
// port. By default it answers every A question with one A record DefaultIP
// (TTL 60), names under "nx." with NXDOMAIN and an SOA, and other types
// with NODATA and an SOA; EDNS queries get an OPT record advertising 1232.
// It never truncates by size: a test wanting big replies gets them over
// UDP too. TCP connections are served pipelined.
type Upstream struct {
	t        testing.TB
	addr     string
	ttl      uint32
	handler  func(*dns.Msg) *dns.Msg
	custom   bool // handler given by the test: may block
	behavior atomic.Int32
	latency  atomic.Int64
	queries  atomic.Int64
	tcpQs    atomic.Int64

	mu      sync.Mutex
	running bool
	udp     *net.UDPConn
	spoof   *net.UDPConn
	tcp     *net.TCPListener
	conns   map[net.Conn]struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
	last    *dns.Msg
}

// StartUpstream starts a fake upstream; it is stopped when the test ends.
func StartUpstream(t testing.TB, opts ...UpstreamOption) *Upstream {
	t.Helper()
	u := &Upstream{t: t, addr: "127.0.0.1:0", ttl: 60}
	for _, o := range opts {
		o(u)
	}
	u.custom = u.handler != nil
	if !u.custom {
		u.handler = u.defaultHandler
	}
	u.Start()
	t.Cleanup(u.Stop)
	return u
}

// Addr returns the host:port served on UDP and TCP.
func (u *Upstream) Addr() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.addr
}

// SetBehavior changes the behaviour for queries received from now on.
func (u *Upstream) SetBehavior(b Behavior) { u.behavior.Store(int32(b)) }

// SetLatency changes the reply delay for queries received from now on.
func (u *Upstream) SetLatency(d time.Duration) { u.latency.Store(int64(d)) }

// Queries returns how many queries arrived (UDP and TCP, parseable or not,
// whatever the behaviour) since the start or the last Reset.
func (u *Upstream) Queries() int { return int(u.queries.Load()) }

// QueriesTCP returns how many of Queries arrived over TCP.
func (u *Upstream) QueriesTCP() int { return int(u.tcpQs.Load()) }

// LastQuery returns a copy of the last parseable query received, nil when
// none since the start or the last Reset.
func (u *Upstream) LastQuery() *dns.Msg {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == nil {
		return nil
	}
	return u.last.Copy()
}

// Reset zeroes the counters and forgets the last query.
func (u *Upstream) Reset() {
	u.queries.Store(0)
	u.tcpQs.Store(0)
	u.mu.Lock()
	u.last = nil
	u.mu.Unlock()
}

// Start (re)starts serving on Addr after Stop; StartUpstream calls it
// first. A restarted upstream keeps its port, so clients configured with
// Addr reach it again. It does nothing when already running.
func (u *Upstream) Start() {
	u.t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.running {
		return
	}
	var err error
	// A fixed port can still be held for a moment by the previous
	// sockets' teardown; a zero port can be free for UDP and not for TCP.
	for attempt := 0; attempt < 50; attempt++ {
		if err = u.bind(); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		u.t.Fatalf("testsupport: starting fake upstream on %s: %v", u.addr, err)
	}
	u.running = true
	u.stop = make(chan struct{})
	u.conns = make(map[net.Conn]struct{})
	u.wg.Add(2)
	go u.serveUDP(u.udp, u.spoof, u.stop)
	go u.serveTCP(u.tcp, u.stop)
}

func (u *Upstream) bind() error {
	udp, err := net.ListenPacket("udp", u.addr)
	if err != nil {
		return err
	}
	addr := udp.LocalAddr().(*net.UDPAddr)
	tcp, err := net.Listen("tcp", addr.String())
	if err != nil {
		udp.Close()
		return err
	}
	spoof, err := net.ListenUDP("udp", &net.UDPAddr{IP: addr.IP})
	if err != nil {
		udp.Close()
		tcp.Close()
		return err
	}
	u.udp, u.tcp, u.spoof = udp.(*net.UDPConn), tcp.(*net.TCPListener), spoof
	u.addr = addr.String()
	return nil
}

// Stop closes the sockets and every TCP connection and waits for the
// server's goroutines. Queries sent while stopped get ICMP port
// unreachable (UDP) or a refused connection (TCP).
func (u *Upstream) Stop() {
	u.mu.Lock()
	if !u.running {
		u.mu.Unlock()
		return
	}
	u.running = false
	close(u.stop)
	u.udp.Close()
	u.spoof.Close()
	u.tcp.Close()
	for c := range u.conns {
		c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

func (u *Upstream) serveUDP(conn, spoof *net.UDPConn, stop chan struct{}) {
	defer u.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		u.queries.Add(1)
		raw := append([]byte(nil), buf[:n]...)
		send := func(rs []reply) {
			for _, r := range rs {
				c := conn
				if r.spoofed {
					c = spoof
				}
				_, _ = c.WriteToUDPAddrPort(r.data, from)
			}
		}
		u.handle(raw, false, stop, send)
	}
}

func (u *Upstream) serveTCP(ln *net.TCPListener, stop chan struct{}) {
	defer u.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		u.mu.Lock()
		if !u.running {
			u.mu.Unlock()
			c.Close()
			return
		}
		u.conns[c] = struct{}{}
		u.wg.Add(1)
		u.mu.Unlock()
		go u.serveConn(c, stop)
	}
}

func (u *Upstream) serveConn(c net.Conn, stop chan struct{}) {
	defer u.wg.Done()
	defer func() {
		u.mu.Lock()
		delete(u.conns, c)
		u.mu.Unlock()
		c.Close()
	}()
	var wmu sync.Mutex
	var lenBuf [2]byte
	for {
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		raw := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, raw); err != nil {
			return
		}
		u.queries.Add(1)
		u.tcpQs.Add(1)
		u.handle(raw, true, stop, func(rs []reply) {
			wmu.Lock()
			defer wmu.Unlock()
			for _, r := range rs {
				if r.spoofed {
					continue
				}
				frame := make([]byte, 2+len(r.data))
				binary.BigEndian.PutUint16(frame, uint16(len(r.data)))
				copy(frame[2:], r.data)
				_, _ = c.Write(frame)
			}
		})
	}
}

// reply is one datagram or TCP message to send back; spoofed ones go out
// of the other UDP socket.
type reply struct {
	data    []byte
	spoofed bool
}

// handle works out the replies for one query and sends them, after the
// latency if any. Forged replies go out at once: a spoofer races the
// real server.
func (u *Upstream) handle(raw []byte, tcp bool, stop chan struct{}, send func([]reply)) {
	req := new(dns.Msg)
	if err := req.Unpack(raw); err != nil || len(req.Question) != 1 {
		return // a fake server may ignore what it cannot read
	}
	u.mu.Lock()
	u.last = req
	u.mu.Unlock()
	b := Behavior(u.behavior.Load())
	forged, real := u.replies(req, raw, tcp, b)
	if len(forged) > 0 {
		send(forged)
	}
	if real == nil {
		return
	}
	d := time.Duration(u.latency.Load())
	if d <= 0 && !u.custom {
		send(real())
		return
	}
	// A custom handler may block (a test's barrier): it runs on its own
	// goroutine so it never holds up the queries behind it.
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		if d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
		send(real())
	}()
}

// replies returns the forged replies to send at once and a function
// building the real ones (nil: no real reply).
func (u *Upstream) replies(req *dns.Msg, raw []byte, tcp bool, b Behavior) (forged []reply, real func() []reply) {
	pack := func(m *dns.Msg, spoofed bool) []reply {
		if m == nil {
			return nil
		}
		data, err := m.Pack()
		if err != nil {
			return nil
		}
		return []reply{{data: data, spoofed: spoofed}}
	}
	rcode := func(code int) func() []reply {
		return func() []reply {
			m := new(dns.Msg)
			m.SetRcode(req, code)
			return pack(m, false)
		}
	}
	switch b {
	case Blackhole:
		return nil, nil
	case ServFail:
		return nil, rcode(dns.RcodeServerFailure)
	case Refused:
		return nil, rcode(dns.RcodeRefused)
	case NotImp:
		return nil, rcode(dns.RcodeNotImplemented)
	case FormErr:
		return nil, rcode(dns.RcodeFormatError)
	case Garbage:
		// ID, QR|RD|RA, QDCOUNT 1, ANCOUNT 3 and then a question that
		// runs off the end of the message.
		g := []byte{raw[0], raw[1], 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0, 63, 'x', 'y'}
		return nil, func() []reply { return []reply{{data: g}} }
	case Truncate:
		if !tcp {
			return nil, func() []reply {
				m := new(dns.Msg)
				m.SetReply(req)
				m.Truncated = true
				return pack(m, false)
			}
		}
	case WrongID, WrongIDOnly:
		f := u.forge(req)
		f.Id = req.Id + 1
		forged = pack(f, false)
	case WrongQuestion, WrongQuestionOnly:
		f := u.forge(req)
		f.Question[0].Name = "spoof." + req.Question[0].Name
		for _, rr := range f.Answer {
			rr.Header().Name = f.Question[0].Name
		}
		forged = pack(f, false)
	case WrongSource, WrongSourceOnly:
		if !tcp {
			forged = pack(u.forge(req), true)
		}
	case WrongCase:
		if !tcp {
			f := u.forge(req)
			f.Question[0].Name = swapCase(req.Question[0].Name)
			forged = pack(f, false)
		}
	}
	switch b {
	case WrongIDOnly, WrongQuestionOnly, WrongSourceOnly:
		return forged, nil
	}
	return forged, func() []reply { return pack(u.handler(req), false) }
}

// swapCase returns s with every ASCII letter in the other case.
func swapCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		if l := c | 0x20; 'a' <= l && l <= 'z' {
			b[i] = c ^ 0x20
		}
	}
	return string(b)
}

// forge builds a reply to req whose answer is ForgedIP.
func (u *Upstream) forge(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	m.Answer = []dns.RR{&dns.A{
		Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
		A:   ForgedIP.AsSlice(),
	}}
	return m
}

func (u *Upstream) defaultHandler(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	soa := &dns.SOA{
		Hdr: dns.RR_Header{Name: "nx.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: u.ttl},
		Ns:  "ns.nx.", Mbox: "hostmaster.nx.", Serial: 1, Refresh: 3600, Retry: 600,
		Expire: 86400, Minttl: u.ttl,
	}
	switch {
	case name == "nx." || strings.HasSuffix(name, ".nx."):
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa}
	case q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: u.ttl},
			A:   DefaultIP.AsSlice(),
		}}
	default:
		soa.Hdr.Name = "."
		soa.Ns, soa.Mbox = "ns.invalid.", "hostmaster.invalid."
		m.Ns = []dns.RR{soa}
	}
	if req.IsEdns0() != nil {
		m.SetEdns0(1232, false)
	}
	return m
}
