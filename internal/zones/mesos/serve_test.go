package mesos

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/spartan-dns/spartan/internal/zones"
	"github.com/stretchr/testify/require"
)

// serveAuthority serves auth through the handler master mode runs
// (NewDNSHandler, with its memo) on server.Server, on a loopback
// UDP and TCP port (the same number), and returns the address.
func serveAuthority(t *testing.T, auth *zones.Authority) string {
	t.Helper()
	return serveHandler(t, NewDNSHandler(auth, nil))
}

// serveHandler serves h on server.Server on a loopback UDP and TCP port
// (the same number) until the test ends, and returns the address.
func serveHandler(t *testing.T, h server.Handler) string {
	t.Helper()
	pc, ln, err := server.Listen(t.Context(), "127.0.0.1:0")
	require.NoError(t, err)
	srv := &server.Server{Handler: h, Logger: discardLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, []net.PacketConn{pc}, []net.Listener{ln}) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return pc.LocalAddr().String()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// dig runs dig (testsupport.Dig) against addr and returns its output.
func dig(t *testing.T, addr string, args ...string) string {
	t.Helper()
	out, err := testsupport.Dig(t, addr, args...)
	require.NoError(t, err, "dig %v: %s", args, out)
	return out
}

func TestServeWithDig(t *testing.T) {
	m := demoMaster(t)
	addr := serveAuthority(t, zones.NewAuthority(m.Store()))

	for _, tc := range []struct {
		name   string
		args   []string
		status string
		aa     bool   // the AA flag; QR must be set and RA clear
		answer string // must appear in the answer section; "" means none
		soa    bool   // SOA in authority
	}{
		{"A", []string{"nginx.marathon.mesos", "A"}, "NOERROR", true, "nginx.marathon.mesos.\t60\tIN\tA\t10.3.0.3", false},
		{"case-insensitive", []string{"NGINX.Marathon.MESOS", "A"}, "NOERROR", true, "10.3.0.3", false},
		{"AAAA", []string{"toy-store.ipv6-framework.mesos", "AAAA"}, "NOERROR", true, "fd01:b::1:8000:2", false},
		{"SRV with additional", []string{"_car-store._tcp.marathon.mesos", "SRV"}, "NOERROR", true, "0 1 31364 car-store-zinaz-0.marathon.slave.mesos.", false},
		{"NODATA for another type", []string{"nginx.marathon.mesos", "AAAA"}, "NOERROR", true, "", true},
		{"NODATA for an empty non-terminal", []string{"_tcp.marathon.mesos", "SRV"}, "NOERROR", true, "", true},
		{"NODATA for framework under slave", []string{"marathon.slave.mesos", "A"}, "NOERROR", true, "", true},
		{"NXDOMAIN", []string{"nope.marathon.mesos", "A"}, "NXDOMAIN", true, "", true},
		{"NXDOMAIN for a missing SRV", []string{"_nope._tcp.marathon.mesos", "SRV"}, "NXDOMAIN", true, "", true},
		{"SOA", []string{"mesos", "SOA"}, "NOERROR", true, "ns1.mesos. root.ns1.mesos.", false},
		{"NS over TCP", []string{"+tcp", "mesos", "NS"}, "NOERROR", true, "ns1.mesos.", false},
		{"outside the zone is refused", []string{"example.com", "A"}, "REFUSED", false, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: the second answer comes from the memo.
			for range 2 {
				checkDig(t, addr, tc.args, tc.status, tc.aa, tc.answer, tc.soa)
			}
		})
	}
}

// checkDig asks addr with dig and checks the reply's status, flags, the
// record expected in the answer section and the SOA in authority.
func checkDig(t *testing.T, addr string, args []string, status string, aa bool, answer string, soa bool) {
	t.Helper()
	out := dig(t, addr, args...)
	r, err := testsupport.ParseDig(out)
	require.NoError(t, err)
	require.Equal(t, status, r.Rcode, out)
	require.True(t, r.HasFlag("qr"), out)
	require.Equal(t, aa, r.HasFlag("aa"), out)
	require.False(t, r.HasFlag("ra"), "an authority does not offer recursion: %s", out)
	require.True(t, r.HasFlag("rd"), "dig asks with RD, which the reply copies: %s", out)
	ans := section(out, "ANSWER")
	if answer == "" {
		require.Empty(t, ans, out)
	} else {
		require.Contains(t, ans, answer, out)
	}
	require.Equal(t, soa, strings.Contains(section(out, "AUTHORITY"), "SOA"), out)
	if strings.HasPrefix(args[0], "_car-store.") {
		// Both SRV records share one target: its address once.
		require.Equal(t, "car-store-zinaz-0.marathon.slave.mesos.\t60 IN A\t1.2.3.11", section(out, "ADDITIONAL"), out)
	}
}

// section returns the lines of one section of dig's output.
func section(out, name string) string {
	_, rest, ok := strings.Cut(out, ";; "+name+" SECTION:\n")
	if !ok {
		return ""
	}
	body, _, _ := strings.Cut(rest, "\n\n")
	return body
}

func TestServeTruncatesOverUDP(t *testing.T) {
	// Many agents make slave.mesos too big for 512 bytes.
	var slaves []string
	for i := range 100 {
		slaves = append(slaves, `{"id":"s`+strconv.Itoa(i)+`","pid":"slave(1)@10.9.0.`+strconv.Itoa(i+1)+`:5051"}`)
	}
	m := newMaster(t, masterConfig(t, []string{"127.0.0.1:5050"}, ""))
	m.UseState([]byte(`{"leader":"master@127.0.0.1:5050","slaves":[` + strings.Join(slaves, ",") + `]}`))
	require.NoError(t, m.Poll(t.Context()))
	addr := serveAuthority(t, zones.NewAuthority(m.Store()))

	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion("slave.mesos.", dns.TypeA)
	r, _, err := c.ExchangeContext(t.Context(), q, addr)
	require.NoError(t, err)
	require.True(t, r.Truncated, "answers %d, len %d", len(r.Answer), r.Len())
	require.True(t, r.Authoritative)
	require.Less(t, len(r.Answer), 100)

	c.Net = "tcp"
	r, _, err = c.ExchangeContext(t.Context(), q, addr)
	require.NoError(t, err)
	require.False(t, r.Truncated)
	require.Len(t, r.Answer, 100)

	out := dig(t, addr, "slave.mesos", "A")
	require.Contains(t, out, "ANSWER: 100")
}

// TestServeMalformed sends what a master port gets from the wild: each bad
// message is followed by a good query on the same socket, and the first
// reply must be the one expected for the bad message (or, when it deserves
// none, the good query's).
func TestServeMalformed(t *testing.T) {
	m := newMaster(t, masterConfig(t, []string{"127.0.0.1:5050"}, ""))
	m.UseState(DemoState)
	require.NoError(t, m.Poll(t.Context()))
	addr := serveAuthority(t, zones.NewAuthority(m.Store()))

	good := new(dns.Msg)
	good.SetQuestion("leader.mesos.", dns.TypeA)
	good.Id = 0xBEEF
	goodWire, err := good.Pack()
	require.NoError(t, err)
	notify := new(dns.Msg)
	notify.SetNotify("mesos.")
	notify.Id = 0x1234
	notifyWire, err := notify.Pack()
	require.NoError(t, err)
	response := append([]byte(nil), goodWire...)
	response[0], response[1], response[2] = 0x12, 0x34, response[2]|0x80
	twoQuestions := new(dns.Msg)
	twoQuestions.Id = 0x1234
	twoQuestions.Question = []dns.Question{good.Question[0], {Name: "mesos.", Qtype: dns.TypeSOA, Qclass: dns.ClassINET}}
	twoWire, err := twoQuestions.Pack()
	require.NoError(t, err)

	for _, tc := range []struct {
		name  string
		msg   []byte
		id    uint16 // of the first reply
		rcode int
	}{
		{"shorter than a header: dropped", []byte{0x12, 0x34, 0x01}, 0xBEEF, dns.RcodeSuccess},
		{"a response: dropped", response, 0xBEEF, dns.RcodeSuccess},
		{"truncated question: FORMERR", append([]byte{0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0}, 6, 'l', 'e', 'a'), 0x1234, dns.RcodeFormatError},
		{"two questions: FORMERR", twoWire, 0x1234, dns.RcodeFormatError},
		{"NOTIFY: not implemented", notifyWire, 0x1234, dns.RcodeNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, network := range []string{"udp", "tcp"} {
				c, err := net.Dial(network, addr)
				require.NoError(t, err)
				defer c.Close()
				// Generous, only against a hang.
				require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
				dc := &dns.Conn{Conn: c}
				_, err = dc.Write(tc.msg)
				require.NoError(t, err)
				_, err = dc.Write(goodWire)
				require.NoError(t, err)
				r, err := dc.ReadMsg()
				require.NoError(t, err, network)
				require.Equal(t, tc.id, r.Id, network)
				require.Equal(t, tc.rcode, r.Rcode, network)
				require.True(t, r.Response, network)
				if tc.id == 0xBEEF {
					require.True(t, r.Authoritative, network)
					require.Len(t, r.Answer, 1, network)
				}
			}
		})
	}
}

// startService runs a Service for cfg on a loopback port until the test
// ends, when Run must return nil. prepare, when given, sees the Service
// before it runs.
func startService(t testing.TB, cfg config.Master, o ServiceOptions, prepare ...func(*Service)) *Service {
	t.Helper()
	cfg.Listen = []string{"127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := NewService(ctx, cfg, o)
	require.NoError(t, err)
	for _, p := range prepare {
		p(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return s
}

// TestServiceLifecycle runs a Service: it serves the zone from its state
// on UDP and TCP, and Run returns nil once its context ends, with the
// sockets released.
func TestServiceLifecycle(t *testing.T) {
	cfg := masterConfig(t, []string{"1.2.3.4:5050"}, "")
	cfg.Listen = []string{"127.0.0.1:0"}
	ctx, cancel := context.WithCancel(t.Context())
	s, err := NewService(ctx, cfg, ServiceOptions{Logger: discardLogger(), State: DemoState})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	addr := s.Addrs()[0]

	q := new(dns.Msg)
	q.SetQuestion("liquor-store.marathon.mesos.", dns.TypeA)
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 5 * time.Second}
		require.Eventually(t, func() bool {
			r, _, err := c.Exchange(q, addr)
			return err == nil && r.Authoritative && len(r.Answer) == 2
		}, 10*time.Second, 10*time.Millisecond, network)
	}
	cancel()
	require.NoError(t, <-done)
	pc, ln, err := server.Listen(t.Context(), addr)
	require.NoError(t, err, "the sockets are released")
	pc.Close()
	ln.Close()
}

// TestServeFailsUntilLoaded: until a state has been read, every name below
// the zones' apexes gets SERVFAIL (never NXDOMAIN, which agents would
// cache for names that exist), also after polls have failed, while the
// apexes answer SOA and NS and names outside the zones are REFUSED.
func TestServeFailsUntilLoaded(t *testing.T) {
	fake := testsupport.NewFakeMesosMaster(t, DemoState)
	fake.SetMode(testsupport.MesosHang)
	cfg := masterConfig(t, []string{fake.Addr()}, `,"refreshSeconds":1`) // stateTimeoutSeconds 1
	s := startService(t, cfg, ServiceOptions{Logger: discardLogger()})
	addr := s.Addrs()[0]

	check := func(when string) {
		for _, c := range notLoadedCases {
			for _, network := range []string{"udp", "tcp"} {
				r := exchange(t, network, addr, c.name, c.qtype)
				require.Equal(t, dns.RcodeToString[c.rcode], dns.RcodeToString[r.Rcode], "%s: %s %s over %s", when, c.name, dns.TypeToString[c.qtype], network)
				require.Len(t, r.Answer, c.answers, "%s: %s", when, c.name)
				require.Equal(t, c.rcode != dns.RcodeServerFailure && c.rcode != dns.RcodeRefused, r.Authoritative, "%s: %s", when, c.name)
			}
		}
	}
	check("while the first poll hangs")
	require.False(t, s.Master.Loaded())
	require.Eventually(t, func() bool { return s.Master.Stats().Failures >= 2 }, 10*time.Second, 10*time.Millisecond)
	check("after failed polls")
	require.False(t, s.Master.Loaded())

	fake.SetMode(testsupport.MesosOK)
	require.Eventually(t, s.Master.Loaded, 10*time.Second, 10*time.Millisecond)
	r := exchange(t, "udp", addr, "liquor-store.marathon.mesos.", dns.TypeA)
	require.Equal(t, dns.RcodeSuccess, r.Rcode)
	require.Len(t, r.Answer, 2)
	r = exchange(t, "udp", addr, "nosuch.marathon.mesos.", dns.TypeA)
	require.Equal(t, dns.RcodeNameError, r.Rcode, "NXDOMAIN once a state was read")

	// A failed poll after that keeps the last good zones.
	fake.SetMode(testsupport.MesosFail)
	failures := s.Master.Stats().Failures
	require.Eventually(t, func() bool { return s.Master.Stats().Failures > failures }, 10*time.Second, 10*time.Millisecond)
	r = exchange(t, "udp", addr, "liquor-store.marathon.mesos.", dns.TypeA)
	require.Equal(t, dns.RcodeSuccess, r.Rcode)
	require.Len(t, r.Answer, 2)
	r = exchange(t, "udp", addr, "liquor-store.marathon.agentip.dcos.thisdcos.directory.", dns.TypeA)
	require.Equal(t, dns.RcodeSuccess, r.Rcode)
	require.Len(t, r.Answer, 2)
}

// notLoadedCases are the answers of master mode before it read a state.
var notLoadedCases = []struct {
	name    string
	qtype   uint16
	rcode   int
	answers int
}{
	{"mesos.", dns.TypeSOA, dns.RcodeSuccess, 1},
	{"MESOS.", dns.TypeNS, dns.RcodeSuccess, 1},
	{"thisdcos.directory.", dns.TypeSOA, dns.RcodeSuccess, 1},
	{"thisdcos.directory.", dns.TypeNS, dns.RcodeSuccess, 1},
	{"thisdcos.global.", dns.TypeSOA, dns.RcodeSuccess, 1},
	{"mesos.thisdcos.directory.", dns.TypeSOA, dns.RcodeSuccess, 1},
	{"thisdcos.directory.", dns.TypeA, dns.RcodeSuccess, 0},
	{"leader.mesos.", dns.TypeA, dns.RcodeServerFailure, 0},
	{"nosuch.marathon.mesos.", dns.TypeA, dns.RcodeServerFailure, 0},
	{"liquor-store.marathon.autoip.dcos.thisdcos.directory.", dns.TypeA, dns.RcodeServerFailure, 0},
	{"leader.dcos.thisdcos.directory.", dns.TypeA, dns.RcodeServerFailure, 0},
	{"leader.mesos.thisdcos.directory.", dns.TypeA, dns.RcodeServerFailure, 0},
	{"x.dcos.thisdcos.global.", dns.TypeA, dns.RcodeServerFailure, 0},
	{"example.com.", dns.TypeA, dns.RcodeRefused, 0},
}

// TestServeBootOrder is a cluster booting: master mode starts while no
// Mesos master listens, which starts later. Names get SERVFAIL until then
// and resolve within a refresh of the Mesos master answering.
func TestServeBootOrder(t *testing.T) {
	mesosAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testsupport.FreePort(t, "127.0.0.1")))
	cfg := masterConfig(t, []string{mesosAddr}, `,"refreshSeconds":1`)
	s := startService(t, cfg, ServiceOptions{Logger: discardLogger()})
	addr := s.Addrs()[0]
	require.Eventually(t, func() bool { return s.Master.Stats().Failures >= 1 }, 10*time.Second, 10*time.Millisecond)
	for _, name := range []string{"liquor-store.marathon.mesos.", "liquor-store.marathon.autoip.dcos.thisdcos.directory."} {
		r := exchange(t, "udp", addr, name, dns.TypeA)
		require.Equal(t, dns.RcodeServerFailure, r.Rcode, name)
	}

	fake := testsupport.NewFakeMesosMasterAt(t, mesosAddr, DemoState)
	require.Eventually(t, func() bool { return fake.Requests("/master/state") > 0 }, 10*time.Second, 10*time.Millisecond)
	// One refresh (1 s) after the master answers, with slack for a
	// loaded machine.
	for _, name := range []string{"liquor-store.marathon.mesos.", "liquor-store.marathon.autoip.dcos.thisdcos.directory."} {
		require.Eventually(t, func() bool {
			r := exchange(t, "udp", addr, name, dns.TypeA)
			return r.Rcode == dns.RcodeSuccess && len(r.Answer) == 2
		}, 5*time.Second, 20*time.Millisecond, name)
	}
}

// exchange asks addr for name over network.
func exchange(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	r, _, err := c.Exchange(q, addr)
	require.NoError(t, err)
	require.Equal(t, q.Question, r.Question)
	return r
}
