// Command loadgen is the benchmark's DNS load client. It sends UDP queries
// either at a fixed rate (open loop: a slow server does not slow the
// sender, so queueing shows up as latency and loss) or as fast as a fixed
// number of outstanding queries allows, and prints one line of key=value
// results: throughput, loss, reply codes and latency percentiles (p50,
// p99, p99.9, max).
//
// Names come from wire.SeqName ("a000000.example.com." ...): -names N
// cycles over N names from -start, -names 0 makes every query a new name;
// -queries FILE reads "name type" lines (dnsperf's format) instead.
// Queries go out over -sockets connected sockets with recvmmsg/sendmmsg
// batches; a query is identified by its socket and ID, and a reply is
// counted only when its question matches the query's.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/bench/internal/wire"
	"golang.org/x/net/ipv4"
)

type options struct {
	server      string
	rate        float64
	outstanding int
	duration    time.Duration
	timeout     time.Duration
	names       uint64
	start       uint64
	once        bool
	queries     string
	sockets     int
	label       string
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "127.0.0.1:53", "server host:port")
	flag.Float64Var(&o.rate, "rate", 0, "queries per second; 0: as fast as -outstanding allows")
	flag.IntVar(&o.outstanding, "outstanding", 100, "queries in flight at most (without -rate)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long to send")
	flag.DurationVar(&o.timeout, "timeout", 2500*time.Millisecond, "a query unanswered after this is lost")
	flag.Uint64Var(&o.names, "names", 0, "cycle over this many names; 0: every query a new name")
	flag.Uint64Var(&o.start, "start", 0, "index of the first name")
	flag.BoolVar(&o.once, "once", false, "send each of -names once, then stop (with -outstanding in flight)")
	flag.StringVar(&o.queries, "queries", "", `file of "name type" lines to cycle over instead of generated names`)
	flag.IntVar(&o.sockets, "sockets", 4, "client sockets (source ports)")
	flag.StringVar(&o.label, "label", "", "label printed first in the result line")
	flag.Parse()
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	// The sender sleeps in a system call (pause) that holds its processor:
	// the receivers need another one, even on one CPU.
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 2))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if err != nil {
		slog.Error("loadgen", "err", err)
		os.Exit(1)
	}
	fmt.Println(res.line(o.label))
}

func (o *options) check() error {
	switch {
	case o.rate < 0:
		return errors.New("-rate must not be negative")
	case o.rate == 0 && o.outstanding <= 0:
		return errors.New("-outstanding must be positive")
	case o.sockets <= 0 || o.sockets > 64:
		return errors.New("-sockets must be in 1..64")
	case o.timeout <= 0:
		return errors.New("-timeout must be positive")
	case o.once && o.names == 0 && o.queries == "":
		return errors.New("-once needs -names or -queries")
	case !o.once && o.duration <= 0:
		return errors.New("-duration must be positive")
	}
	return nil
}

// source makes the question (name, type, class) of query number seq.
type source interface {
	question(dst []byte, seq uint64) []byte
	count() uint64 // distinct questions; 0: unbounded
}

type seqSource struct{ start, n uint64 }

func (s seqSource) question(dst []byte, seq uint64) []byte {
	if s.n > 0 {
		seq %= s.n
	}
	return append(wire.SeqName(dst, s.start+seq), 0, 1, 0, 1)
}

func (s seqSource) count() uint64 { return s.n }

type fileSource [][]byte

func (f fileSource) question(dst []byte, seq uint64) []byte {
	return append(dst, f[seq%uint64(len(f))]...)
}

func (f fileSource) count() uint64 { return uint64(len(f)) }

func readQueries(path string) (fileSource, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("queries: %w", err)
	}
	var f fileSource
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		qtype := dns.TypeA
		if len(fields) > 1 {
			t, ok := dns.StringToType[strings.ToUpper(fields[1])]
			if !ok {
				return nil, fmt.Errorf("%s:%d: unknown type %q", path, line, fields[1])
			}
			qtype = t
		}
		buf := make([]byte, 256)
		n, err := dns.PackDomainName(dns.Fqdn(fields[0]), buf, 0, nil, false)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		f = append(f, append(buf[:n], byte(qtype>>8), byte(qtype), 0, 1))
	}
	if len(f) == 0 {
		return nil, fmt.Errorf("%s: no queries", path)
	}
	return f, nil
}

// batch is how many queries one sendmmsg carries at most.
const batch = 32

// maxLag is how late the sender may fall behind its schedule (-rate)
// before it skips sends instead of catching up.
const maxLag = int64(2 * time.Millisecond)

// pause sleeps for d. The runtime's timers wake a sleeper about a
// millisecond late, which at high rates would send in bursts of a
// millisecond's worth of queries; a nanosleep system call (the runtime
// hands the processor to other goroutines meanwhile) is late by the
// kernel's timer slack only, about 50µs. main makes sure a second
// processor runs the receivers while the sender's thread sleeps.
func pause(d time.Duration) {
	if d >= 2*time.Millisecond {
		time.Sleep(d)
		return
	}
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}

// client is one run's state. Slot s<<16|id belongs to socket s, query ID
// id; sent holds the send time (nanoseconds since begin, 0 when free) and
// seq the query number, so a reply is matched to its query and checked.
type client struct {
	o     options
	src   source
	begin time.Time
	conns []*net.UDPConn
	sent  []atomic.Int64
	seq   []atomic.Uint64
	// tokens holds one token per query that may be sent (max mode).
	tokens chan struct{}
	recv   []*receiver
}

// receiver is one socket's read loop and what it counted.
type receiver struct {
	c       *client
	sock    int
	lat     []uint32 // nanoseconds
	answers [16]int  // by RCODE
	ok      int      // NOERROR with at least one answer
	late    int      // reply for a query already counted lost
	bad     int      // unparseable, or question not the query's
}

type result struct {
	elapsed  time.Duration
	sent     int
	lost     int
	overflow int // not sent: every ID of every socket in flight
	sendErr  int
	skipped  int // rate mode: sends skipped because the sender lagged
	recv     []*receiver
}

func run(ctx context.Context, o options) (*result, error) {
	c := &client{o: o, src: seqSource{start: o.start, n: o.names}}
	if o.queries != "" {
		f, err := readQueries(o.queries)
		if err != nil {
			return nil, err
		}
		c.src = f
	}
	raddr, err := net.ResolveUDPAddr("udp", o.server)
	if err != nil {
		return nil, fmt.Errorf("server %q: %w", o.server, err)
	}
	for range o.sockets {
		conn, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", o.server, err)
		}
		defer conn.Close()
		_ = conn.SetReadBuffer(4 << 20)
		_ = conn.SetWriteBuffer(4 << 20)
		c.conns = append(c.conns, conn)
	}
	c.sent = make([]atomic.Int64, o.sockets<<16)
	c.seq = make([]atomic.Uint64, o.sockets<<16)
	if o.rate == 0 {
		c.tokens = make(chan struct{}, o.outstanding)
		for range o.outstanding {
			c.tokens <- struct{}{}
		}
	}
	expect := 1 << 16
	if o.rate > 0 {
		expect = int(o.rate*o.duration.Seconds()) / o.sockets
	}
	c.begin = time.Now()
	var wg sync.WaitGroup
	for i, conn := range c.conns {
		r := &receiver{c: c, sock: i, lat: make([]uint32, 0, expect+1024)}
		c.recv = append(c.recv, r)
		wg.Go(func() { r.loop(conn) })
	}
	res := c.send(ctx)
	for _, conn := range c.conns {
		conn.Close()
	}
	wg.Wait()
	res.recv = c.recv
	return res, nil
}

func (c *client) now() int64 { return int64(time.Since(c.begin)) + 1 }

// pending is a query in send order, for finding the ones timed out.
type pending struct {
	slot uint32
	at   int64
}

// send runs the sender until the duration (or the -once names) is done,
// then waits for the queries still in flight to be answered or lost.
func (c *client) send(ctx context.Context) *result {
	res := &result{}
	o := c.o
	var (
		inflight fifo
		sched    uint64 // rate mode: send times used (sent or skipped)
		nextID   = make([]uint16, o.sockets)
		sock     int
		seqNo    uint64
		msgs     = make([]ipv4.Message, batch)
		bufs     = make([][]byte, batch)
		pcs      = make([]*ipv4.PacketConn, o.sockets)
		timeout  = int64(o.timeout)
		end      = int64(o.duration)
		total    = uint64(0) // -once: queries to send
	)
	for i, conn := range c.conns {
		pcs[i] = ipv4.NewPacketConn(conn)
	}
	for i := range bufs {
		bufs[i] = make([]byte, 0, 512)
	}
	if o.once {
		total = c.src.count()
		end = 1 << 62
	}
	// sweep drops answered queries from the head of the FIFO and counts
	// the ones unanswered for longer than the timeout as lost.
	sweep := func(now int64) {
		for p, ok := inflight.head(); ok; p, ok = inflight.head() {
			if c.sent[p.slot].Load() == p.at {
				if p.at+timeout > now {
					return
				}
				if c.sent[p.slot].CompareAndSwap(p.at, 0) {
					res.lost++
					c.release()
				}
			}
			inflight.pop()
		}
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		now := c.now()
		if now >= end || (o.once && seqNo >= total) {
			break
		}
		sweep(now)
		n := batch
		if o.once {
			n = int(min(uint64(n), total-seqNo))
		}
		if o.rate > 0 {
			due := int64(float64(sched) * 1e9 / o.rate)
			if due > now {
				pause(time.Duration(due - now))
				continue
			}
			behind := uint64(float64(now)*o.rate/1e9) + 1 - sched
			if now-due > maxLag {
				// The sender was descheduled: skip the sends it missed
				// rather than burst them, which would measure the
				// server's socket buffer, not the server.
				res.skipped += int(behind - 1)
				sched += behind - 1
				behind = 1
			}
			n = int(min(uint64(n), behind))
			sched += uint64(n)
		} else {
			n = c.acquire(n, tick.C)
			if n == 0 {
				continue
			}
		}
		// Allocate a free ID on this socket for each query.
		m := 0
		now = c.now()
		for range n {
			slot, ok := c.allocate(sock, &nextID[sock])
			if !ok {
				res.overflow++
				seqNo++
				c.release()
				continue
			}
			q := c.src.question(wire.AppendQueryHeader(bufs[m][:0], uint16(slot)), seqNo)
			bufs[m] = q
			msgs[m].Buffers = [][]byte{q}
			c.seq[slot].Store(seqNo)
			c.sent[slot].Store(now)
			inflight.push(pending{slot: slot, at: now})
			seqNo++
			m++
		}
		res.sent += m
		for w := 0; w < m; {
			k, err := pcs[sock].WriteBatch(msgs[w:m], 0)
			if err != nil {
				// ECONNREFUSED from an earlier ICMP error, or a full
				// buffer: these queries will time out as lost.
				res.sendErr++
				break
			}
			w += k
		}
		sock = (sock + 1) % o.sockets
	}
	res.elapsed = time.Duration(c.now())
	if !o.once {
		res.elapsed = min(res.elapsed, o.duration)
	}
	// Drain: wait for every query in flight to be answered or time out.
	for ctx.Err() == nil {
		if sweep(c.now()); inflight.len() == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if o.once {
		res.elapsed = time.Duration(c.now())
	}
	return res
}

// fifo is a queue of pending queries in send order.
type fifo struct {
	q []pending
	h int
}

func (f *fifo) push(p pending) { f.q = append(f.q, p) }
func (f *fifo) len() int       { return len(f.q) - f.h }

func (f *fifo) head() (pending, bool) {
	if f.h == len(f.q) {
		return pending{}, false
	}
	return f.q[f.h], true
}

func (f *fifo) pop() {
	f.h++
	if f.h == len(f.q) {
		f.q, f.h = f.q[:0], 0
	} else if f.h >= 4096 && f.h*2 >= len(f.q) {
		f.q, f.h = append(f.q[:0], f.q[f.h:]...), 0
	}
}

// acquire takes up to n send tokens, waiting for the first one at most
// until the next tick (so the sender can sweep lost queries).
func (c *client) acquire(n int, tick <-chan time.Time) int {
	select {
	case <-c.tokens:
	case <-tick:
		return 0
	}
	got := 1
	for got < n {
		select {
		case <-c.tokens:
			got++
		default:
			return got
		}
	}
	return got
}

// release returns a send token (max mode).
func (c *client) release() {
	if c.tokens != nil {
		select {
		case c.tokens <- struct{}{}:
		default:
		}
	}
}

// allocate finds a free query ID on socket s, starting at *next.
func (c *client) allocate(s int, next *uint16) (uint32, bool) {
	for range 1 << 16 {
		slot := uint32(s)<<16 | uint32(*next)
		*next++
		if c.sent[slot].Load() == 0 {
			return slot, true
		}
	}
	return 0, false
}

func (r *receiver) loop(conn *net.UDPConn) {
	c := r.c
	pc := ipv4.NewPacketConn(conn)
	msgs := make([]ipv4.Message, 64)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 4096)}
	}
	var want []byte
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ECONNREFUSED and the like concern one datagram
		}
		now := c.now()
		for i := range n {
			b := msgs[i].Buffers[0][:msgs[i].N]
			h, ok := wire.ParseHeader(b)
			if !ok {
				r.bad++
				continue
			}
			slot := uint32(r.sock)<<16 | uint32(h.ID)
			at := c.sent[slot].Load()
			if at == 0 {
				r.late++
				continue
			}
			want = c.src.question(want[:0], c.seq[slot].Load())
			if len(b) < wire.HeaderLen+len(want) || !bytes.EqualFold(b[wire.HeaderLen:wire.HeaderLen+len(want)], want) {
				r.bad++
				continue
			}
			if !c.sent[slot].CompareAndSwap(at, 0) {
				r.late++
				continue
			}
			c.release()
			r.lat = append(r.lat, uint32(min(now-at, 1<<32-1)))
			r.answers[h.Rcode]++
			if h.Rcode == dns.RcodeSuccess && h.Answers > 0 {
				r.ok++
			}
		}
	}
}

// line formats the result as key=value pairs.
func (r *result) line(label string) string {
	var lat []uint32
	var answers [16]int
	ok, late, bad := 0, 0, 0
	for _, rv := range r.recv {
		lat = append(lat, rv.lat...)
		for i, v := range rv.answers {
			answers[i] += v
		}
		ok += rv.ok
		late += rv.late
		bad += rv.bad
	}
	answered := len(lat)
	p := wire.Percentiles(lat, 0.5, 0.99, 0.999, 1)
	us := func(ns uint32) string { return fmt.Sprintf("%.1f", float64(ns)/1e3) }
	sent := r.sent + r.overflow
	pct := func(n int) string {
		if sent == 0 {
			return "0"
		}
		return fmt.Sprintf("%.3f", 100*float64(n)/float64(sent))
	}
	other := answered - answers[dns.RcodeSuccess] - answers[dns.RcodeNameError] - answers[dns.RcodeServerFailure] - answers[dns.RcodeRefused]
	var b strings.Builder
	if label != "" {
		fmt.Fprintf(&b, "label=%s ", label)
	}
	fmt.Fprintf(&b, "sent=%d answered=%d qps=%.0f elapsed_s=%.2f ok=%d ok_pct=%s noerror=%d nxdomain=%d servfail=%d refused=%d other=%d",
		sent, answered, float64(answered)/r.elapsed.Seconds(), r.elapsed.Seconds(), ok, pct(ok),
		answers[dns.RcodeSuccess], answers[dns.RcodeNameError], answers[dns.RcodeServerFailure], answers[dns.RcodeRefused], other)
	fmt.Fprintf(&b, " lost=%d loss_pct=%s overflow=%d skipped=%d late=%d bad=%d send_errors=%d p50_us=%s p99_us=%s p999_us=%s max_us=%s",
		r.lost, pct(r.lost+r.overflow), r.overflow, r.skipped, late, bad, r.sendErr, us(p[0]), us(p[1]), us(p[2]), us(p[3]))
	return b.String()
}
