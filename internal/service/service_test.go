package service_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/service"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/spartan-dns/spartan/internal/zones"
)

// The test binary doubles as a socket-activated child: with this variable
// set, TestMain serves the local zone on the passed sockets instead of
// running tests.
const childEnv = "SPARTAN_SERVICE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(activatedChild())
	}
	os.Exit(m.Run())
}

// activatedChild serves ready.spartan on every passed socket, prints one
// "udp ADDR" or "tcp ADDR" line per socket and then "serving", and exits
// on SIGTERM.
func activatedChild() int {
	socks, err := service.Activated()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if socks.Empty() {
		fmt.Fprintln(os.Stderr, "no sockets passed")
		return 1
	}
	if os.Getenv("LISTEN_FDS") != "" {
		fmt.Fprintln(os.Stderr, "LISTEN_FDS left in the environment")
		return 1
	}
	r := newResponder()
	var servers []*dns.Server
	for _, pc := range socks.Packet {
		fmt.Println("udp", pc.LocalAddr())
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: r})
	}
	for _, ln := range socks.Stream {
		fmt.Println("tcp", ln.Addr())
		servers = append(servers, &dns.Server{Listener: ln, Handler: r})
	}
	for _, s := range servers {
		go func() { _ = s.ActivateAndServe() }()
	}
	fmt.Println("serving")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	for _, s := range servers {
		_ = s.Shutdown()
	}
	return 0
}

// responder answers from the real local zone; wedge makes it hang, as a
// stuck query path would, until unwedged.
type responder struct {
	auth *zones.Authority
	mu   sync.Mutex
	gate chan struct{} // closed while answering normally
}

func newResponder() *responder {
	g := make(chan struct{})
	close(g)
	z := zones.NewLocal(netip.MustParseAddr("127.0.0.1"))
	return &responder{auth: zones.NewAuthority(zones.NewStore(z)), gate: g}
}

func (r *responder) wedge() {
	r.mu.Lock()
	r.gate = make(chan struct{})
	r.mu.Unlock()
}

func (r *responder) unwedge() {
	r.mu.Lock()
	close(r.gate)
	r.mu.Unlock()
}

func (r *responder) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	r.mu.Lock()
	g := r.gate
	r.mu.Unlock()
	<-g
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	_ = w.WriteMsg(r.auth.Reply(req, tcp))
}

// startDNS serves h on a loopback UDP port and returns the address.
func startDNS(t *testing.T, h dns.Handler) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &dns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestNotifierMessages(t *testing.T) {
	sock := testsupport.NewNotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", sock.Path)
	n := &service.Notifier{}
	n.Ready("serving on 127.0.0.1:53;\n2/2 upstreams healthy")
	n.Status("cache 10 entries")
	n.Watchdog()
	n.Reloading()
	n.Reloaded("reloaded")
	n.Stopping()
	last := sock.WaitForMessage(t, 0, 10*time.Second, "STATUS=stopping")
	msgs := sock.Messages()[:last+1]
	require.Len(t, msgs, 10)
	require.Equal(t, []string{
		"READY=1", "STATUS=serving on 127.0.0.1:53; 2/2 upstreams healthy",
		"STATUS=cache 10 entries",
		"WATCHDOG=1",
		"RELOADING=1",
	}, msgs[:5])
	require.True(t, strings.HasPrefix(msgs[5], "MONOTONIC_USEC="), msgs[5])
	require.Equal(t, []string{"READY=1", "STATUS=reloaded", "STOPPING=1", "STATUS=stopping"}, msgs[6:10])
}

// TestNotifierWithoutSocket: without NOTIFY_SOCKET (not started by
// systemd) nothing is sent and nothing is logged; with a NOTIFY_SOCKET
// nobody listens on, every failed send is logged as a warning and none is
// fatal.
func TestNotifierWithoutSocket(t *testing.T) {
	for _, tc := range []struct {
		name, socket string
		warnings     int
	}{
		{"no NOTIFY_SOCKET", "", 0},
		{"NOTIFY_SOCKET nobody listens on", filepath.Join(t.TempDir(), "missing.sock"), 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", tc.socket)
			var buf bytes.Buffer
			n := &service.Notifier{Log: slog.New(slog.NewTextHandler(&buf, nil))}
			n.Ready("x")
			n.Status("y")
			n.Watchdog()
			n.Reloading()
			n.Reloaded("z")
			n.Stopping()
			require.Equal(t, tc.warnings, strings.Count(buf.String(), `level=WARN msg="sd_notify failed"`), buf.String())
			require.Equal(t, tc.warnings, strings.Count(buf.String(), "\n"), buf.String())
		})
	}
}

// TestSupervisorReadinessAndWatchdog drives the supervisor against a real
// DNS server answering ready.spartan from the local zone, then wedges that
// server. The check itself writes CHECK=ok / CHECK=fail into the same
// notify socket, from the same goroutine that sends WATCHDOG=1, so the
// socket holds the exact interleaving and the test can show that every
// ping follows a successful self-query and none follows a failed one.
func TestSupervisorReadinessAndWatchdog(t *testing.T) {
	sock := testsupport.NewNotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", sock.Path)
	t.Setenv("WATCHDOG_USEC", "200000") // pings every 100ms
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))

	r := newResponder()
	r.wedge() // not ready yet: the query path hangs
	addr := startDNS(t, r)

	var statusMu sync.Mutex
	statusText := "1/1 upstreams healthy; cache 0 entries"
	// The check runs on the supervisor's goroutine: a failure to write the
	// mark is handed back to the test goroutine, not asserted there.
	markErrs := make(chan error, 1)
	sup := &service.Supervisor{
		Check: func(ctx context.Context) error {
			err := service.SelfQuery(ctx, "udp", addr)
			mark := "CHECK=ok"
			if err != nil {
				mark = "CHECK=fail"
			}
			if sent, nerr := daemon.SdNotify(false, mark); nerr != nil || !sent {
				select {
				case markErrs <- fmt.Errorf("writing %s to the notify socket: sent %v, err %v", mark, sent, nerr):
				default:
				}
			}
			return err
		},
		Status: func() string {
			statusMu.Lock()
			defer statusMu.Unlock()
			return statusText
		},
		ReadyRetry: 20 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()

	const wait = 30 * time.Second
	isFail := func(m string) bool { return m == "CHECK=fail" }
	// Three failed start-up checks, and no READY=1 among them.
	i := sock.WaitFor(t, 0, wait, isFail)
	i = sock.WaitFor(t, i+1, wait, isFail)
	i = sock.WaitFor(t, i+1, wait, isFail)
	require.NotContains(t, sock.Messages(), "READY=1")
	require.NotContains(t, sock.Messages(), "WATCHDOG=1")
	require.False(t, sup.Healthy())

	r.unwedge()
	ready := sock.WaitForMessage(t, i, wait, "READY=1")
	require.Equal(t, "STATUS=1/1 upstreams healthy; cache 0 entries", sock.Messages()[ready+1])
	p1 := sock.WaitForMessage(t, ready, wait, "WATCHDOG=1")
	sock.WaitForMessage(t, p1+1, wait, "WATCHDOG=1")

	// A status change is published at the next tick.
	statusMu.Lock()
	statusText = "1/1 upstreams healthy; cache 3 entries"
	statusMu.Unlock()
	sock.WaitForMessage(t, ready, wait, "STATUS=1/1 upstreams healthy; cache 3 entries")

	// Wedge the query path: the self-query times out and pings stop.
	r.wedge()
	f1 := sock.WaitFor(t, ready, wait, isFail)
	f2 := sock.WaitFor(t, f1+1, wait, isFail)
	sock.WaitFor(t, f2+1, wait, isFail)
	require.False(t, sup.Healthy())
	r.unwedge()
	ok := sock.WaitFor(t, f1, wait, func(m string) bool { return m == "CHECK=ok" })
	resumed := sock.WaitForMessage(t, ok, wait, "WATCHDOG=1")
	require.True(t, sup.Healthy())

	cancel()
	require.NoError(t, <-done)
	stop := sock.WaitForMessage(t, resumed, wait, "STOPPING=1")
	select {
	case err := <-markErrs:
		require.NoError(t, err)
	default:
	}

	// The whole transcript: after READY=1, each WATCHDOG=1 directly
	// follows CHECK=ok (possibly with a STATUS= in between), and there
	// is no WATCHDOG=1 between a CHECK=fail and the next CHECK=ok.
	msgs := sock.Messages()[:stop+1]
	lastCheck := ""
	pings, withheld := 0, 0
	for _, m := range msgs {
		switch {
		case strings.HasPrefix(m, "CHECK="):
			if lastCheck == "CHECK=fail" && m == "CHECK=fail" {
				withheld++
			}
			lastCheck = m
		case m == "WATCHDOG=1":
			require.Equal(t, "CHECK=ok", lastCheck, "WATCHDOG=1 after a failed self-query: %q", msgs)
			pings++
		}
	}
	require.GreaterOrEqual(t, pings, 3)
	require.GreaterOrEqual(t, withheld, 2)
	unhealthy := false
	for _, m := range msgs {
		unhealthy = unhealthy || strings.HasPrefix(m, "STATUS=unhealthy: self-query udp "+addr)
	}
	require.True(t, unhealthy, "no unhealthy status in %q", msgs)
}

func TestSelfQuery(t *testing.T) {
	good := startDNS(t, newResponder())
	wrong := startDNS(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
			A:   net.IPv4(192, 0, 2, 1),
		})
		_ = w.WriteMsg(m)
	}))
	servfail := startDNS(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		_ = w.WriteMsg(m)
	}))
	for _, tc := range []struct {
		name, addr, err string
	}{
		{"local zone answer", good, ""},
		{"wrong address", wrong, "no A 127.0.0.1"},
		{"servfail", servfail, "rcode SERVFAIL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := service.SelfQuery(ctx, "udp", tc.addr)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
	t.Run("timeout honours the context", func(t *testing.T) {
		r := newResponder()
		r.wedge()
		defer r.unwedge()
		addr := startDNS(t, r)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		require.Error(t, service.SelfQuery(ctx, "udp", addr))
	})
}

func TestSelfQueryAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:53":        "127.0.0.1:53",
		"[::]:5353":         "[::1]:5353",
		"169.254.20.10:53":  "169.254.20.10:53",
		"[fe80::1%eth0]:53": "[fe80::1%eth0]:53",
	} {
		got, err := service.SelfQueryAddr(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := service.SelfQueryAddr("localhost:53")
	require.Error(t, err)
}

// startDNSTCP serves h on a loopback TCP port and returns the address.
func startDNSTCP(t *testing.T, h dns.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &dns.Server{Listener: ln, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// TestSelfQueryAll: the check passes only when every listener answers;
// one wedged listener, UDP or TCP, fails it and is named in the error.
func TestSelfQueryAll(t *testing.T) {
	good := newResponder()
	wedged := newResponder()
	wedged.wedge()
	goodUDP, goodTCP := startDNS(t, good), startDNSTCP(t, good)
	goodUDP2 := startDNS(t, good)
	wedgedUDP, wedgedTCP := startDNS(t, wedged), startDNSTCP(t, wedged)
	// Registered last, so run first: the servers' shutdown waits for
	// their handlers.
	t.Cleanup(wedged.unwedge)
	udp := func(a string) service.SelfQueryTarget { return service.SelfQueryTarget{Network: "udp", Addr: a} }
	tcp := func(a string) service.SelfQueryTarget { return service.SelfQueryTarget{Network: "tcp", Addr: a} }
	for _, tc := range []struct {
		name    string
		targets []service.SelfQueryTarget
		errs    []string // substrings of the error; none: success
	}{
		{"every listener answers", []service.SelfQueryTarget{udp(goodUDP), udp(goodUDP2), tcp(goodTCP)}, nil},
		{"one UDP listener of two wedged", []service.SelfQueryTarget{udp(goodUDP), udp(wedgedUDP), tcp(goodTCP)},
			[]string{"self-query udp " + wedgedUDP}},
		{"TCP wedged, UDP answers", []service.SelfQueryTarget{udp(goodUDP), tcp(wedgedTCP)},
			[]string{"self-query tcp " + wedgedTCP}},
		{"both wedged", []service.SelfQueryTarget{udp(wedgedUDP), tcp(wedgedTCP), udp(goodUDP)},
			[]string{"self-query udp " + wedgedUDP, "self-query tcp " + wedgedTCP}},
		{"no listener", nil, []string{"no listener"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := service.SelfQueryAll(ctx, tc.targets)
			if tc.errs == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, e := range tc.errs {
				require.ErrorContains(t, err, e)
			}
			require.NotContains(t, err.Error(), goodUDP)
			require.NotContains(t, err.Error(), goodTCP)
		})
	}
}

func TestSelfQueryTargets(t *testing.T) {
	got, err := service.SelfQueryTargets([]string{"0.0.0.0:53", "192.0.2.53:53"}, []string{"[::]:53"})
	require.NoError(t, err)
	require.Equal(t, []service.SelfQueryTarget{
		{Network: "udp", Addr: "127.0.0.1:53"}, {Network: "udp", Addr: "192.0.2.53:53"}, {Network: "tcp", Addr: "[::1]:53"},
	}, got)
	got, err = service.SelfQueryTargets(nil, []string{"127.0.0.1:5353"})
	require.NoError(t, err)
	require.Equal(t, []service.SelfQueryTarget{{Network: "tcp", Addr: "127.0.0.1:5353"}}, got)
	_, err = service.SelfQueryTargets(nil, nil)
	require.Error(t, err)
	_, err = service.SelfQueryTargets([]string{"localhost:53"}, nil)
	require.Error(t, err)
}

// child is a socket-activated copy of the test binary.
type child struct {
	udp, tcp []string
}

// readChild parses the child's report lines up to "serving".
func readChild(t *testing.T, sc *bufio.Scanner) child {
	t.Helper()
	var c child
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "serving":
			return c
		case len(f) == 2 && f[0] == "udp":
			c.udp = append(c.udp, f[1])
		case len(f) == 2 && f[0] == "tcp":
			c.tcp = append(c.tcp, f[1])
		}
	}
	t.Fatalf("child exited before serving: %v", sc.Err())
	return c
}

func selfQuery(t *testing.T, network, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, service.SelfQuery(ctx, network, addr))
}

// TestSocketActivationWithSystemdSocketActivate uses systemd's own tool
// to pass a datagram socket (-d) and a stream socket, as spartan.socket
// does, and queries the child through them.
func TestSocketActivationWithSystemdSocketActivate(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		testsupport.SkipOrFail(t, "systemd-socket-activate not installed (apt-get install systemd); socket activation not exercised with systemd's tool")
	}
	for _, tc := range []struct {
		name    string
		network string
		args    []string
	}{
		{"udp", "udp", []string{"-d"}},
		{"tcp", "tcp", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// systemd-socket-activate prints the address only with
			// port 0 resolved by the child, so pick a free port.
			addr := freePort(t, tc.network)
			args := append(append([]string{}, tc.args...), "-l", addr, "-E", childEnv+"=1", os.Args[0])
			cmd := exec.Command(tool, args...)
			cmd.Env = append(os.Environ(), childEnv+"=1")
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			errOut, err := cmd.StderrPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
			})
			// Wait for the tool to listen ("Listening on ADDR as 3.").
			stderr := bufio.NewScanner(errOut)
			for stderr.Scan() && !strings.HasPrefix(stderr.Text(), "Listening on") {
			}
			require.NoError(t, stderr.Err())
			go func() {
				for stderr.Scan() {
				}
			}()
			// The tool execs the child on the first packet or
			// connection, which then waits in the socket.
			selfQuery(t, tc.network, addr)
			c := readChild(t, bufio.NewScanner(out))
			if tc.network == "udp" {
				require.Equal(t, []string{addr}, c.udp)
				require.Empty(t, c.tcp)
			} else {
				require.Equal(t, []string{addr}, c.tcp)
				require.Empty(t, c.udp)
			}
			selfQuery(t, tc.network, addr)
		})
	}
}

// TestSocketActivationBothTransports passes a UDP and a TCP socket on the
// same port at once, with the test-support socket holder. The queries are
// sent without waiting for the child to report it serves: they wait in
// the sockets, which is the point of socket activation. Then the child is
// SIGKILLed, a query is sent while no process serves, and a new child
// answers it.
func TestSocketActivationBothTransports(t *testing.T) {
	h := testsupport.NewSocketHolder(t)
	h.Start(t, []string{childEnv + "=1"}, os.Args[0])
	selfQuery(t, "udp", h.Addr)
	selfQuery(t, "tcp", h.Addr)

	h.Kill()
	errc := make(chan error, 2)
	for _, network := range []string{"udp", "tcp"} {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			errc <- service.SelfQuery(ctx, network, h.Addr)
		}()
	}
	h.Start(t, []string{childEnv + "=1"}, os.Args[0])
	require.NoError(t, <-errc)
	require.NoError(t, <-errc)
}

func TestActivatedWithoutSockets(t *testing.T) {
	t.Setenv("LISTEN_FDS", "")
	t.Setenv("LISTEN_PID", "")
	s, err := service.Activated()
	require.NoError(t, err)
	require.True(t, s.Empty())
}

func freePort(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		defer pc.Close()
		return pc.LocalAddr().String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}
