package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DNS over TLS defaults.
const (
	// DefaultTLSConnectTimeout bounds a TLS upstream's TCP connect and
	// handshake together: well under the default race timeout (2 s), so a
	// server that accepts connections but never completes the handshake
	// fails its leg while the race can still be answered by another.
	DefaultTLSConnectTimeout = 500 * time.Millisecond
	// DefaultTLSIdleTimeout closes a connection with no query in flight
	// for this long. Servers close idle connections too (unbound after
	// tcp-idle-timeout, 30 s by default); closing first avoids sending a
	// query on a connection the server is closing.
	DefaultTLSIdleTimeout = 10 * time.Second
	// maxPipelined caps the IDs reserved on one connection: queries in
	// flight plus abandoned ones whose reply never came. A connection
	// reaching it is retired and a fresh one opened, so a server that
	// swallows queries cannot make IDs run out (there are 65536).
	maxPipelined = 4096
)

// TLSOptions configures a group's DNS over TLS upstreams.
type TLSOptions struct {
	// Roots are the certificate authorities servers are verified against;
	// nil means the system roots.
	Roots *x509.CertPool
	// ConnectTimeout bounds the TCP connect plus the TLS handshake.
	// Default: DefaultTLSConnectTimeout.
	ConnectTimeout time.Duration
	// IdleTimeout closes a connection with nothing in flight. Default:
	// DefaultTLSIdleTimeout.
	IdleTimeout time.Duration
}

// WithTLS sets how the group's DNS over TLS upstreams connect; it does not
// affect UDP upstreams.
func WithTLS(o TLSOptions) GroupOption { return func(g *Group) { g.tls = o } }

// TLSStats counts a TLS upstream's connections since it was created.
type TLSStats struct {
	// Handshakes is the number of completed TLS handshakes (connections
	// opened), Resumptions those that resumed an earlier session.
	Handshakes, Resumptions uint64
	// CertErrors counts handshakes that failed because the server's
	// certificate did not verify.
	CertErrors uint64
	// Connections is the number of connections open now (0 or 1).
	Connections int64
}

// TLSStats returns the upstream's TLS connection counters; all zero for a
// UDP upstream.
func (u *Upstream) TLSStats() TLSStats {
	d := u.dot
	if d == nil {
		return TLSStats{}
	}
	return TLSStats{Handshakes: d.handshakes.Load(), Resumptions: d.resumptions.Load(),
		CertErrors: d.certErrors.Load(), Connections: d.open.Load()}
}

var (
	// errConnGone: the connection closed before the query went out; the
	// leg may try once more on a fresh one.
	errConnGone = errors.New("tls connection closed")
	errClosed   = errors.New("upstream group closed")
)

// dotClient is the connection side of a DNS over TLS upstream: at most one
// open connection, shared by every leg (RFC 7766 §6.2.1.1 pipelining: each
// query has its own ID and replies are matched to them in any order). A
// connection is opened by the first leg that needs one, on a goroutine of
// the client's own, so a leg that loses its race does not abort a
// handshake the next query will want; legs arriving meanwhile wait for
// that same dial. It never falls back to clear text.
type dotClient struct {
	u              *Upstream
	serverName     string // as configured; empty: the address
	cfg            *tls.Config
	connectTimeout time.Duration
	idleTimeout    time.Duration
	ctx            context.Context // cancelled by close
	cancel         context.CancelFunc
	wg             sync.WaitGroup // dials and connection readers

	mu     sync.Mutex
	conn   *dotConn // the connection new queries go on; nil when none
	dial   *dialing // the dial in progress; nil when none
	closed bool

	handshakes, resumptions, certErrors atomic.Uint64
	open                                atomic.Int64
	// certBad is set from a certificate error to the next verified
	// handshake: the upstream is unhealthy meanwhile, and the error is
	// logged once.
	certBad atomic.Bool
}

// dialing is one connection attempt; done is closed when conn or err is
// set.
type dialing struct {
	done chan struct{}
	conn *dotConn
	err  error
}

func newDoT(u *Upstream, serverName string) *dotClient {
	d := &dotClient{u: u, serverName: serverName}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.configure(TLSOptions{})
	return d
}

// configure applies a group's options; called before first use.
func (d *dotClient) configure(o TLSOptions) {
	serverName := d.serverName
	if serverName == "" {
		// crypto/tls checks an IP address against the certificate's IP
		// addresses, and sends no SNI for it.
		serverName = d.u.addr.Addr().String()
	}
	d.cfg = &tls.Config{
		ServerName: serverName,
		RootCAs:    o.Roots,          // nil: the system roots
		MinVersion: tls.VersionTLS12, // RFC 8310 §9
		// One entry per upstream is enough: it talks to one server.
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
	}
	d.connectTimeout, d.idleTimeout = o.ConnectTimeout, o.IdleTimeout
	if d.connectTimeout <= 0 {
		d.connectTimeout = DefaultTLSConnectTimeout
	}
	if d.idleTimeout <= 0 {
		d.idleTimeout = DefaultTLSIdleTimeout
	}
}

// close closes the connection, stops a dial in progress and waits for
// their goroutines. Legs still waiting get errClosed or the connection's
// error.
func (d *dotClient) close() {
	d.mu.Lock()
	d.closed = true
	c := d.conn
	d.mu.Unlock()
	d.cancel()
	if c != nil {
		c.fail(errClosed)
	}
	d.wg.Wait()
}

// get returns the open connection, or waits for one to be dialled (at most
// connectTimeout) unless ctx or stop ends the wait first.
func (d *dotClient) get(ctx context.Context, stop <-chan struct{}) (*dotConn, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, errClosed
	}
	if c := d.conn; c != nil {
		d.mu.Unlock()
		return c, nil
	}
	dl := d.dial
	if dl == nil {
		dl = &dialing{done: make(chan struct{})}
		d.dial = dl
		d.wg.Add(1)
		go d.runDial(dl)
	}
	d.mu.Unlock()
	select {
	case <-dl.done:
		return dl.conn, dl.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-stop:
		return nil, errLegCancelled
	}
}

func (d *dotClient) runDial(dl *dialing) {
	defer d.wg.Done()
	ctx, cancel := context.WithTimeout(d.ctx, d.connectTimeout)
	defer cancel()
	tc, err := d.connect(ctx)
	var c *dotConn
	d.mu.Lock()
	d.dial = nil
	switch {
	case err != nil:
	case d.closed:
		tc.Close()
		err = errClosed
	default:
		c = &dotConn{d: d, c: tc, pending: make(map[uint16]*pendingQuery), lastUse: time.Now()}
		d.conn = c
		d.open.Add(1)
		d.wg.Add(1)
		go c.read()
	}
	d.mu.Unlock()
	dl.conn, dl.err = c, err
	close(dl.done)
}

// connect opens a TCP connection and completes the TLS handshake before
// ctx's deadline, and records the handshake and its certificate's verdict.
func (d *dotClient) connect(ctx context.Context) (*tls.Conn, error) {
	var nd net.Dialer
	raw, err := nd.DialContext(ctx, "tcp", d.u.addr.String())
	if err != nil {
		return nil, fmt.Errorf("tcp connect: %w", err)
	}
	tc := tls.Client(raw, d.cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		var ce *tls.CertificateVerificationError
		if errors.As(err, &ce) {
			d.certFailed(ce)
			return nil, fmt.Errorf("tls handshake: certificate: %w", ce.Err)
		}
		if ctx.Err() != nil && d.ctx.Err() == nil {
			return nil, fmt.Errorf("tls handshake: not completed within %s: %w", d.connectTimeout, err)
		}
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	d.handshakes.Add(1)
	if tc.ConnectionState().DidResume {
		d.resumptions.Add(1)
	}
	if d.certBad.CompareAndSwap(true, false) {
		d.u.log().Info("upstream presents a valid TLS certificate again", "upstream", d.u.str, "zone", d.u.zone)
	}
	return tc, nil
}

// certFailed counts a certificate that did not verify, logs the first of
// a series with its reason, and makes the upstream unhealthy until a
// handshake verifies.
func (d *dotClient) certFailed(ce *tls.CertificateVerificationError) {
	d.certErrors.Add(1)
	if d.certBad.CompareAndSwap(false, true) {
		attrs := []any{"upstream", d.u.str, "zone", d.u.zone, "serverName", d.cfg.ServerName, "reason", ce.Err.Error()}
		if len(ce.UnverifiedCertificates) > 0 {
			leaf := ce.UnverifiedCertificates[0]
			attrs = append(attrs, "subject", leaf.Subject.String(), "notAfter", leaf.NotAfter.UTC())
		}
		d.u.log().Error("TLS upstream certificate rejected: upstream unhealthy until it presents a valid one", attrs...)
	}
}

// dotConn is one open TLS connection and the queries in flight on it.
type dotConn struct {
	d   *dotClient
	c   *tls.Conn
	wmu sync.Mutex // one query written at a time

	mu sync.Mutex
	// pending maps the ID of each query sent to the query; nil marks a
	// query abandoned by its leg, whose ID stays reserved until its reply
	// comes, so no new query can take the late reply for its own.
	pending   map[uint16]*pendingQuery
	lastUse   time.Time // last query sent or reply received
	lastReply time.Time // last reply received
	dead      bool
	err       error
}

// pendingQuery is a query in flight on a connection: its question, for
// the reader to tell its reply from another with the same ID, and the
// channel its reply goes to (closed if the connection fails first).
type pendingQuery struct {
	question []byte
	ch       chan []byte
}

// send writes query (length-prefixed, its ID overwritten, its question
// qlen bytes long) under a fresh ID free on the connection and returns
// that ID and the channel its reply will arrive on (closed if the
// connection fails first). query must not change while the query is in
// flight: the reader compares replies with its question.
func (c *dotConn) send(query []byte, qlen int) (uint16, chan []byte, error) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return 0, nil, errConnGone
	}
	if len(c.pending) >= maxPipelined {
		c.mu.Unlock()
		c.fail(fmt.Errorf("%d queries unanswered on the connection", maxPipelined))
		return 0, nil, errConnGone
	}
	var id uint16
	for {
		id = newID()
		if _, used := c.pending[id]; !used {
			break
		}
	}
	ch := make(chan []byte, 1)
	c.pending[id] = &pendingQuery{question: query[2+headerLen : 2+headerLen+qlen], ch: ch}
	c.lastUse = time.Now()
	c.mu.Unlock()

	binary.BigEndian.PutUint16(query[2:], id)
	c.wmu.Lock()
	// A write that times out leaves the TLS stream unusable: the
	// connection is then failed as a whole.
	err := c.c.SetWriteDeadline(time.Now().Add(c.d.connectTimeout))
	if err == nil {
		_, err = c.c.Write(query)
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("tls write: %w", err))
		return 0, nil, errConnGone
	}
	return id, ch, nil
}

// abandon releases a query whose leg stopped waiting; its ID stays
// reserved until the reply comes or the connection closes.
func (c *dotConn) abandon(id uint16) {
	c.mu.Lock()
	if p, ok := c.pending[id]; ok && p != nil {
		c.pending[id] = nil
	}
	c.mu.Unlock()
}

// error returns why the connection failed.
func (c *dotConn) error() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// idle reports whether nothing is awaited on the connection and it has
// not been used for the idle timeout; if not, next is when it may be.
func (c *dotConn) idle(now time.Time) (idle bool, next time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next = c.lastUse.Add(c.d.idleTimeout)
	for _, p := range c.pending {
		if p != nil {
			return false, now.Add(c.d.idleTimeout)
		}
	}
	if next.After(now) {
		return false, next
	}
	return true, next
}

// read delivers replies to their queries until the connection fails or
// has been idle for the idle timeout.
func (c *dotConn) read() {
	defer c.d.wg.Done()
	// The read deadline only detects idleness; it is moved when it
	// passes, not on every message.
	if err := c.c.SetReadDeadline(time.Now().Add(c.d.idleTimeout)); err != nil {
		c.fail(err)
		return
	}
	var hdr [2]byte
	for {
		if err := c.readFull(hdr[:], true); err != nil {
			c.fail(err)
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if err := c.readFull(msg, false); err != nil {
			c.fail(err)
			return
		}
		if len(msg) < headerLen {
			c.fail(fmt.Errorf("a %d-byte message is no DNS reply", len(msg)))
			return
		}
		id := binary.BigEndian.Uint16(msg)
		now := time.Now()
		c.mu.Lock()
		p, ok := c.pending[id]
		switch {
		case !ok:
		case p == nil:
			delete(c.pending, id)
		case match(msg, id, p.question, false) == mismatch:
			// Not the reply to this ID's question: ignored, and the
			// query's reply awaited still, as over TCP.
			ok = false
		default:
			delete(c.pending, id)
		}
		c.lastUse, c.lastReply = now, now
		c.mu.Unlock()
		switch {
		case !ok:
		case p != nil:
			p.ch <- msg // buffered, and sent to once
		default:
			// The late reply to a leg that lost its race: no answer for
			// anyone, but proof the upstream is alive (see
			// Upstream.observeCancelled), which a UDP leg, its socket
			// closed, cannot see.
			c.d.u.lastReply.Store(c.d.u.now().UnixNano())
		}
		// A reply to no query in flight is ignored, as UDP's would be.
	}
}

// readFull fills buf from the connection. A read deadline that passes is
// moved on, unless it passes between messages (start) on an idle
// connection: errIdle. A TLS read timeout leaves the stream intact.
func (c *dotConn) readFull(buf []byte, start bool) error {
	for off := 0; off < len(buf); {
		n, err := c.c.Read(buf[off:])
		off += n
		switch {
		case err == nil || off == len(buf):
		case errors.Is(err, os.ErrDeadlineExceeded):
			now := time.Now()
			idle, next := c.idle(now)
			if start && off == 0 && idle {
				return errIdle
			}
			if err := c.c.SetReadDeadline(next); err != nil {
				return err
			}
		default:
			return err
		}
	}
	return nil
}

// unanswered retires the connection after a query sent on it at sent got
// no reply before its race's deadline while nothing else came back on it
// either: a server that lost the connection's state without resetting it
// (a reboot behind a firewall, a NAT timeout) would otherwise hold every
// later query, probes included, until the idle timeout, which their own
// traffic keeps from coming.
func (c *dotConn) unanswered(sent time.Time) {
	c.mu.Lock()
	silent := c.lastReply.Before(sent)
	c.mu.Unlock()
	if silent {
		c.fail(errors.New("no reply on the connection since a query that timed out"))
	}
}

var errIdle = errors.New("idle connection closed")

// fail closes the connection once: the queries waiting on it see their
// channel closed and c.err, and the client opens a new one for the next
// query.
func (c *dotConn) fail(err error) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead, c.err = true, err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, p := range pending {
		if p != nil {
			close(p.ch)
		}
	}
	d := c.d
	d.mu.Lock()
	if d.conn == c {
		d.conn = nil
	}
	d.mu.Unlock()
	// Close the TCP connection without a close_notify alert: writing one
	// could block on a stuck server, and DNS needs none (RFC 7858).
	c.c.NetConn().Close()
	d.open.Add(-1)
	if !errors.Is(err, errIdle) && !errors.Is(err, errClosed) {
		d.u.log().Debug("TLS upstream connection closed", "upstream", d.u.str, "zone", d.u.zone, "reason", err.Error())
	}
}

// exchangeTLS sends the query on the upstream's TLS connection (opening
// one if none is open) and waits for the reply with its ID and question;
// a message with another ID, or with its ID and another question, is
// ignored, as over TCP. The question goes as the client cased it and the
// reply's question must match it ignoring case: over an authenticated TLS
// stream no off-path spoofer can answer, so DNS 0x20 would protect
// nothing. A reply is otherwise checked as over UDP or TCP; with TC set
// (meaningless over a stream) it is relayed as it came. A connection that
// closed before the query went out is replaced once.
func (r *race) exchangeTLS(l *leg) ([]byte, verdict, error) {
	d := l.u.dot
	out := make([]byte, 2+len(r.query))
	binary.BigEndian.PutUint16(out, uint16(len(r.query)))
	copy(out[2:], r.query)
	for attempt := 0; ; attempt++ {
		if l.isCancelled() {
			return nil, failure, errLegCancelled
		}
		c, err := d.get(r.ctx, r.stop)
		if err != nil {
			if errors.Is(err, errLegCancelled) || r.ctx.Err() != nil {
				return nil, failure, r.ended()
			}
			return nil, failure, err
		}
		id, ch, err := c.send(out, len(r.question))
		if err != nil {
			if attempt == 0 {
				continue
			}
			return nil, failure, r.netErr(l, "tls", c.error())
		}
		sent := time.Now()
		if msg, v, done, err := c.await(r, id, ch); done {
			return msg, v, err
		}
		c.abandon(id)
		err = r.ended()
		if errors.Is(err, errLegTimeout) {
			c.unanswered(sent)
		}
		return nil, failure, err
	}
}

// await waits for the reply to query id on ch; done is false when the
// race ended first.
func (c *dotConn) await(r *race, id uint16, ch chan []byte) (msg []byte, v verdict, done bool, err error) {
	select {
	case msg, ok := <-ch:
		if !ok {
			return nil, failure, true, fmt.Errorf("tls read: %w", c.error())
		}
		// The reader matched the ID and the question; check looks at
		// the rest as for any leg.
		if v = check(msg, id, r.question, false); v == truncated {
			v = answer // TC means nothing on a stream: relayed as it came
		}
		return msg, v, true, nil
	case <-r.ctx.Done():
	case <-r.stop:
	}
	return nil, failure, false, nil
}

// log returns the upstream's logger.
func (u *Upstream) log() *slog.Logger {
	if u.logger == nil {
		return slog.Default()
	}
	return u.logger
}
