package testsupport

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// DoTZone is the zone an UnboundDoT serves from local data: every name
// under it (any label, any depth) has the A record DoTZoneAddr, and
// nx.DoTZone does not exist.
const (
	DoTZone     = "dot.test."
	DoTZoneAddr = "192.0.2.53"
)

// UnboundDoT is a real unbound serving DNS over TLS (RFC 7858) on a
// loopback port with a certificate the test chose, and plain DNS on
// another, answering DoTZone from local data. It runs until the test ends;
// Stop and Start restart it on the same ports.
type UnboundDoT struct {
	t    testing.TB
	bin  string
	conf string
	proc *Process
	// Addr is the address its TLS port listens on.
	Addr netip.AddrPort
	// PlainAddr is the address of its plain DNS port (UDP and TCP).
	PlainAddr netip.AddrPort
}

// StartUnboundDoT starts unbound with tls-port on a free loopback port,
// serving the certificate and key of leaf. The test is skipped (failed in
// strict mode) when unbound is not installed.
func StartUnboundDoT(t testing.TB, leaf Leaf) *UnboundDoT {
	t.Helper()
	bin, err := exec.LookPath("unbound")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/unbound"); serr != nil {
			SkipOrFail(t, "unbound not installed (apt-get install unbound); skipping a test that needs a real DNS over TLS server")
		}
		bin = "/usr/sbin/unbound"
	}
	dir := t.TempDir()
	port, plain := FreePort(t, "127.0.0.1"), FreePort(t, "127.0.0.1")
	lo := netip.MustParseAddr("127.0.0.1")
	u := &UnboundDoT{t: t, bin: bin, conf: filepath.Join(dir, "unbound.conf"),
		Addr: netip.AddrPortFrom(lo, uint16(port)), PlainAddr: netip.AddrPortFrom(lo, uint16(plain))}
	conf := fmt.Sprintf(`server:
	verbosity: 1
	num-threads: 1
	interface: 127.0.0.1@%[1]d
	interface: 127.0.0.1@%[8]d
	tls-port: %[1]d
	tls-service-key: %[2]q
	tls-service-pem: %[3]q
	do-ip6: no
	do-daemonize: no
	use-syslog: no
	logfile: ""
	username: ""
	chroot: ""
	directory: %[4]q
	pidfile: %[5]q
	module-config: "iterator"
	access-control: 127.0.0.0/8 allow
	incoming-num-tcp: 256
	local-zone: %[6]q redirect
	local-data: "%[6]s 300 IN A %[7]s"
	local-zone: "nx.%[6]s" always_nxdomain
remote-control:
	control-enable: no
`, port, leaf.KeyFile, leaf.CertFile, dir, filepath.Join(dir, "unbound.pid"), DoTZone, DoTZoneAddr, plain)
	require.NoError(t, os.WriteFile(u.conf, []byte(conf), 0o600))
	u.Start()
	return u
}

// Start starts unbound (again) and waits until its TLS port accepts
// connections.
func (u *UnboundDoT) Start() {
	u.t.Helper()
	u.proc = StartProcess(u.t, u.bin, "-d", "-c", u.conf)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", u.Addr.String())
		if err == nil {
			c.Close()
			return
		}
		if u.proc.Exited() {
			u.t.Fatalf("unbound exited at start: %s", strings.TrimSpace(u.proc.Output()))
		}
		select {
		case <-ctx.Done():
			u.t.Fatalf("unbound's TLS port %s never accepted a connection: %v\n%s", u.Addr, err, u.proc.Output())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stop kills unbound and waits for it to exit: its connections are
// reset by the kernel, as when a server crashes or restarts.
func (u *UnboundDoT) Stop() { u.proc.Kill() }

// URL returns the upstream as spartan writes it, with serverName checked
// against the certificate ("" to check the address).
func (u *UnboundDoT) URL(serverName string) string {
	if serverName == "" {
		return "tls://" + u.Addr.String()
	}
	return "tls://" + u.Addr.String() + "#" + serverName
}

// connServer accepts connections on ln and hands each to serve on a
// goroutine of its own; serve may track further connections (a relay's
// other end) with the track it is given. When the test ends the
// listener and every connection still tracked are closed and the
// goroutines waited for.
func connServer(t testing.TB, ln net.Listener, serve func(c net.Conn, track func(net.Conn) func())) netip.AddrPort {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	// track records c as open and returns what forgets it.
	track := func(c net.Conn) func() {
		mu.Lock()
		defer mu.Unlock()
		conns[c] = struct{}{}
		return func() {
			mu.Lock()
			defer mu.Unlock()
			delete(conns, c)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c, track)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// tlsListener listens on a loopback port with the certificate of leaf.
func tlsListener(t testing.TB, leaf Leaf) net.Listener {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(leaf.CertFile, leaf.KeyFile)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	require.NoError(t, err)
	return ln
}

// StallingTLS is a TCP server that accepts connections and holds them
// open but never sends a byte: a TLS handshake with it never completes.
// It stops when the test ends.
func StallingTLS(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return connServer(t, ln, func(net.Conn, func(net.Conn) func()) {
		// Held open, never answered, until the test ends.
	})
}

// SilentTLS is a DNS over TLS server that completes handshakes with the
// certificate of leaf and reads queries but never answers one: a server
// that lost a connection's state without resetting it. It stops when the
// test ends.
func SilentTLS(t testing.TB, leaf Leaf) netip.AddrPort {
	t.Helper()
	return connServer(t, tlsListener(t, leaf), func(c net.Conn, _ func(net.Conn) func()) {
		_, _ = io.Copy(io.Discard, c) // handshakes, then swallows queries
	})
}

// TLSFront terminates TLS with the certificate of leaf and relays each
// connection's bytes to and from the TCP port of backend ("host:port"),
// such as a fake Upstream's: a DNS over TLS server with that upstream's
// behaviours. It stops when the test ends.
func TLSFront(t testing.TB, leaf Leaf, backend string) netip.AddrPort {
	t.Helper()
	return connServer(t, tlsListener(t, leaf), func(front net.Conn, track func(net.Conn) func()) {
		back, err := net.Dial("tcp", backend)
		if err != nil {
			front.Close()
			return
		}
		forget := track(back)
		defer forget()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(back, front)
			back.Close()
		}()
		_, _ = io.Copy(front, back)
		front.Close()
		<-done
	})
}
