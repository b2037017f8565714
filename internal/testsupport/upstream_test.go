package testsupport

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// readAll sends q over a connected UDP socket and collects every datagram
// that arrives on it within wait.
func readAll(t *testing.T, addr string, q *dns.Msg, wait time.Duration) []*dns.Msg {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer c.Close()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	require.NoError(t, err)
	raw, err := q.Pack()
	require.NoError(t, err)
	_, err = c.WriteToUDP(raw, raddr)
	require.NoError(t, err)
	var out []*dns.Msg
	buf := make([]byte, 65535)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return out
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) != nil {
			m = nil // garbage: recorded as nil
		} else if from.Port != raddr.Port {
			m.Extra = append(m.Extra, &dns.TXT{Hdr: dns.RR_Header{Name: "from.other.port.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}})
		}
		out = append(out, m)
	}
}

func TestUpstreamBehaviors(t *testing.T) {
	u := StartUpstream(t)
	tests := []struct {
		b     Behavior
		name  string
		check func(t *testing.T, q *dns.Msg, got []*dns.Msg)
	}{
		{Answer, "www.example.", func(t *testing.T, q *dns.Msg, got []*dns.Msg) {
			require.Len(t, got, 1)
			require.Equal(t, q.Id, got[0].Id)
			require.Equal(t, DefaultIP.String(), got[0].Answer[0].(*dns.A).A.String())
		}},
		{Answer, "a.nx.", func(t *testing.T, q *dns.Msg, got []*dns.Msg) {
			require.Len(t, got, 1)
			require.Equal(t, dns.RcodeNameError, got[0].Rcode)
			require.IsType(t, &dns.SOA{}, got[0].Ns[0])
		}},
		{Blackhole, "www.example.", func(t *testing.T, q *dns.Msg, got []*dns.Msg) { require.Empty(t, got) }},
		{ServFail, "www.example.", rcodeIs(dns.RcodeServerFailure)},
		{Refused, "www.example.", rcodeIs(dns.RcodeRefused)},
		{NotImp, "www.example.", rcodeIs(dns.RcodeNotImplemented)},
		{FormErr, "www.example.", rcodeIs(dns.RcodeFormatError)},
		{Garbage, "www.example.", func(t *testing.T, q *dns.Msg, got []*dns.Msg) {
			require.Len(t, got, 1)
			require.Nil(t, got[0], "garbage must not parse")
		}},
		{Truncate, "www.example.", func(t *testing.T, q *dns.Msg, got []*dns.Msg) {
			require.Len(t, got, 1)
			require.True(t, got[0].Truncated)
			require.Empty(t, got[0].Answer)
		}},
		{WrongID, "www.example.", func(t *testing.T, q *dns.Msg, got []*dns.Msg) {
			require.Len(t, got, 2)
			require.NotEqual(t, q.Id, got[0].Id)
			require.Equal(t, ForgedIP.String(), got[0].Answer[0].(*dns.A).A.String())
			require.Equal(t, q.Id, got[1].Id)
		}},
		{WrongQuestion, "www.example.", func(t *testing.T, q *dns.Msg, got []*dns.Msg) {
			require.Len(t, got, 2)
			require.Equal(t, q.Id, got[0].Id)
			require.Equal(t, "spoof.www.example.", got[0].Question[0].Name)
			require.Equal(t, "www.example.", got[1].Question[0].Name)
		}},
		{WrongSource, "www.example.", func(t *testing.T, q *dns.Msg, got []*dns.Msg) {
			require.Len(t, got, 2)
			require.Equal(t, "from.other.port.", got[0].Extra[0].Header().Name)
			require.Equal(t, ForgedIP.String(), got[0].Answer[0].(*dns.A).A.String())
			require.Empty(t, got[1].Extra)
		}},
		{WrongSourceOnly, "www.example.", func(t *testing.T, q *dns.Msg, got []*dns.Msg) {
			require.Len(t, got, 1)
			require.Equal(t, "from.other.port.", got[0].Extra[0].Header().Name)
		}},
		{WrongCase, "wWw.Example-1.", func(t *testing.T, q *dns.Msg, got []*dns.Msg) {
			require.Len(t, got, 2)
			require.Equal(t, q.Id, got[0].Id)
			require.Equal(t, "WwW.eXAMPLE-1.", got[0].Question[0].Name)
			require.Equal(t, ForgedIP.String(), got[0].Answer[0].(*dns.A).A.String())
			require.Equal(t, "wWw.Example-1.", got[1].Question[0].Name)
			require.Equal(t, DefaultIP.String(), got[1].Answer[0].(*dns.A).A.String())
		}},
	}
	for _, tc := range tests {
		t.Run(tc.b.String()+"/"+tc.name, func(t *testing.T) {
			u.SetBehavior(tc.b)
			u.Reset()
			q := query(tc.name, dns.TypeA)
			got := readAll(t, u.Addr(), q, 300*time.Millisecond)
			tc.check(t, q, got)
			require.Equal(t, 1, u.Queries())
			require.Equal(t, 0, u.QueriesTCP())
		})
	}
}

func rcodeIs(code int) func(t *testing.T, q *dns.Msg, got []*dns.Msg) {
	return func(t *testing.T, q *dns.Msg, got []*dns.Msg) {
		require.Len(t, got, 1)
		require.Equal(t, code, got[0].Rcode)
		require.Equal(t, q.Id, got[0].Id)
	}
}

func TestUpstreamTCPAndTruncate(t *testing.T) {
	u := StartUpstream(t, WithAddr("127.0.0.2:0"), WithBehavior(Truncate), WithTTL(7))
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.Exchange(query("www.example.", dns.TypeA), u.Addr())
	require.NoError(t, err)
	require.False(t, r.Truncated)
	require.Len(t, r.Answer, 1)
	require.Equal(t, uint32(7), r.Answer[0].Header().Ttl)
	require.Equal(t, 1, u.QueriesTCP())
	require.Contains(t, u.Addr(), "127.0.0.2:")
}

func TestUpstreamTCPPipelined(t *testing.T) {
	u := StartUpstream(t, WithLatency(50*time.Millisecond))
	conn, err := dns.Dial("tcp", u.Addr())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	ids := map[uint16]bool{}
	for i := 0; i < 5; i++ {
		q := query("www.example.", dns.TypeA)
		ids[q.Id] = true
		require.NoError(t, conn.WriteMsg(q))
	}
	for i := 0; i < 5; i++ {
		r, err := conn.ReadMsg()
		require.NoError(t, err)
		require.True(t, ids[r.Id])
		delete(ids, r.Id)
	}
	require.Equal(t, 5, u.QueriesTCP())
}

func TestUpstreamRestartKeepsAddr(t *testing.T) {
	u := StartUpstream(t)
	addr := u.Addr()
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	u.Stop()
	_, _, err := c.Exchange(query("www.example.", dns.TypeA), addr)
	require.Error(t, err)
	u.Start()
	require.Equal(t, addr, u.Addr())
	r, _, err := c.Exchange(query("www.example.", dns.TypeA), addr)
	require.NoError(t, err)
	require.Len(t, r.Answer, 1)
	u.SetLatency(0)
	require.NotNil(t, u.LastQuery())
}

func TestFreePortAndDig(t *testing.T) {
	port := FreePort(t, "127.0.0.1")
	require.NotZero(t, port)
	u := StartUpstream(t)
	out, err := Dig(t, u.Addr(), "www.example.", "A", "+short")
	require.NoError(t, err)
	require.Equal(t, DefaultIP.String(), strings.TrimSpace(out))
	out, err = Dig(t, u.Addr(), "+tcp", "www.example.", "A", "+short")
	require.NoError(t, err)
	require.Equal(t, DefaultIP.String(), strings.TrimSpace(out))
	require.Equal(t, 1, u.QueriesTCP())
}
