package mesos

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/internal/zones"
	"github.com/stretchr/testify/require"
)

// serveAuthority serves auth on a loopback UDP and TCP port (the same
// number) and returns the address.
func serveAuthority(t *testing.T, auth *zones.Authority) string {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	require.NotNil(t, ln, "no port free on both UDP and TCP")
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		_ = w.WriteMsg(auth.Reply(r, tcp))
	})
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// dig runs dig against addr and returns its output.
func dig(t *testing.T, addr string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig not installed")
	}
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dig", append([]string{"@" + host, "-p", port, "+tries=1", "+time=2"}, args...)...).CombinedOutput()
	require.NoError(t, err, "dig %v: %s", args, out)
	return string(out)
}

func TestServeWithDig(t *testing.T) {
	m := newMaster(t, masterConfig(t, []string{"144.76.157.37:5050"}, ""))
	m.UseState(DemoState)
	require.NoError(t, m.Poll(t.Context()))
	addr := serveAuthority(t, zones.NewAuthority(m.Store()))

	for _, tc := range []struct {
		name   string
		args   []string
		status string
		flags  string // must appear in the flags line
		answer string // must appear in the answer section; "" means none
		soa    bool   // SOA in authority
	}{
		{"A", []string{"nginx.marathon.mesos", "A"}, "NOERROR", "qr aa", "nginx.marathon.mesos.\t60\tIN\tA\t10.3.0.3", false},
		{"case-insensitive", []string{"NGINX.Marathon.MESOS", "A"}, "NOERROR", "qr aa", "10.3.0.3", false},
		{"AAAA", []string{"toy-store.ipv6-framework.mesos", "AAAA"}, "NOERROR", "qr aa", "fd01:b::1:8000:2", false},
		{"SRV with additional", []string{"_car-store._tcp.marathon.mesos", "SRV"}, "NOERROR", "qr aa", "0 1 31364 car-store-zinaz-0.marathon.slave.mesos.", false},
		{"NODATA for another type", []string{"nginx.marathon.mesos", "AAAA"}, "NOERROR", "qr aa", "", true},
		{"NODATA for an empty non-terminal", []string{"_tcp.marathon.mesos", "SRV"}, "NOERROR", "qr aa", "", true},
		{"NODATA for framework under slave", []string{"marathon.slave.mesos", "A"}, "NOERROR", "qr aa", "", true},
		{"NXDOMAIN", []string{"nope.marathon.mesos", "A"}, "NXDOMAIN", "qr aa", "", true},
		{"NXDOMAIN for a missing SRV", []string{"_nope._tcp.marathon.mesos", "SRV"}, "NXDOMAIN", "qr aa", "", true},
		{"SOA", []string{"mesos", "SOA"}, "NOERROR", "qr aa", "ns1.mesos. root.ns1.mesos.", false},
		{"NS over TCP", []string{"+tcp", "mesos", "NS"}, "NOERROR", "qr aa", "ns1.mesos.", false},
		{"outside the zone is refused", []string{"example.com", "A"}, "REFUSED", "qr", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := dig(t, addr, tc.args...)
			require.Contains(t, out, "status: "+tc.status, out)
			require.Contains(t, out, "flags: "+tc.flags, out)
			require.NotContains(t, out, " ra", "an authority does not offer recursion")
			ans := section(out, "ANSWER")
			if tc.answer == "" {
				require.Empty(t, ans, out)
			} else {
				require.Contains(t, ans, tc.answer, out)
			}
			require.Equal(t, tc.soa, strings.Contains(section(out, "AUTHORITY"), "SOA"), out)
			if tc.name == "SRV with additional" {
				// Both SRV records share one target: its address once.
				require.Equal(t, "car-store-zinaz-0.marathon.slave.mesos.\t60 IN A\t1.2.3.11", section(out, "ADDITIONAL"), out)
			}
		})
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
