package mesos

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/spartan-dns/spartan/internal/zones"
)

// TestForwardOutsideZone: with resolvers (Mesos-DNS's externalOn), the
// authoritative port answers the zone itself and forwards every other
// name, over UDP and TCP, the longest zone resolver suffix first, as
// Mesos-DNS's resolver.LaunchDNS registers a handler per zone resolver
// beside "." (mesosphere/mesos-dns resolver/resolver.go).
func TestForwardOutsideZone(t *testing.T) {
	root := testsupport.StartUpstream(t)
	weave := testsupport.StartUpstream(t)
	cfg := masterConfig(t, []string{"192.0.2.250:5050"}, `,"resolvers":["`+root.Addr()+`"],
		"zoneResolvers":{"weave":["`+weave.Addr()+`"]},"recursionAvailable":true`)
	s := startService(t, cfg, ServiceOptions{Logger: discardLogger(), State: DemoState})
	addr := s.Addrs()[0]
	require.Eventually(t, s.Master.Loaded, 10*time.Second, 10*time.Millisecond)

	for _, network := range []string{"udp", "tcp"} {
		r := exchange(t, network, addr, "www.Example.com.", dns.TypeA)
		require.Equal(t, dns.RcodeSuccess, r.Rcode, network)
		require.False(t, r.Authoritative)
		require.Len(t, r.Answer, 1)
		require.Equal(t, testsupport.DefaultIP.String(), r.Answer[0].(*dns.A).A.String())

		r = exchange(t, network, addr, "host.weave.", dns.TypeA)
		require.Equal(t, dns.RcodeSuccess, r.Rcode)
		require.True(t, strings.EqualFold("host.weave.", weave.LastQuery().Question[0].Name), "asked the zone's resolver (0x20 casing)")

		r = exchange(t, network, addr, "nginx.marathon.mesos.", dns.TypeA)
		require.True(t, r.Authoritative, "the zone is answered, not forwarded")
		require.True(t, r.RecursionAvailable, "recurseOn sets RA in the zone's replies")
		require.Equal(t, "10.3.0.3", r.Answer[0].(*dns.A).A.String())
	}
	for range 3 {
		// Replayed from the reply memo: RA stays set.
		r := exchange(t, "udp", addr, "nginx.marathon.mesos.", dns.TypeA)
		require.True(t, r.Authoritative)
		require.True(t, r.RecursionAvailable)
	}
	require.Equal(t, 2, weave.Queries())
	require.Equal(t, 2, root.Queries(), "only the names outside the zone reach the resolvers")

	// A truncated reply reaches a UDP client truncated, and its TCP
	// retry is forwarded over TCP; a forged reply is never relayed.
	root.SetBehavior(testsupport.Truncate)
	r := exchange(t, "udp", addr, "big.example.net.", dns.TypeA)
	require.True(t, r.Truncated)
	require.Empty(t, r.Answer)
	r = exchange(t, "tcp", addr, "big.example.net.", dns.TypeA)
	require.False(t, r.Truncated)
	require.Len(t, r.Answer, 1)
	root.SetBehavior(testsupport.WrongID)
	r = exchange(t, "udp", addr, "spoofed.example.net.", dns.TypeA)
	require.Equal(t, testsupport.DefaultIP.String(), r.Answer[0].(*dns.A).A.String())

	// Every resolver failing is SERVFAIL, as Mesos-DNS answers a failed
	// exchange.
	root.SetBehavior(testsupport.Blackhole)
	weave.SetBehavior(testsupport.Blackhole)
	r = exchange(t, "udp", addr, "www.example.org.", dns.TypeA)
	require.Equal(t, dns.RcodeServerFailure, r.Rcode)
}

// TestForwardOffRefuses: without resolvers (externalOn false) a name
// outside the zone is REFUSED: Mesos-DNS's forwarder with no addresses
// returns a ForwardError, which it answers REFUSED (resolver.rcode).
func TestForwardOffRefuses(t *testing.T) {
	s := startService(t, masterConfig(t, []string{"192.0.2.250:5050"}, ""), ServiceOptions{Logger: discardLogger(), State: DemoState})
	require.Eventually(t, s.Master.Loaded, 10*time.Second, 10*time.Millisecond)
	r := exchange(t, "udp", s.Addrs()[0], "www.example.com.", dns.TypeA)
	require.Equal(t, dns.RcodeRefused, r.Rcode)
	r = exchange(t, "udp", s.Addrs()[0], "nginx.marathon.mesos.", dns.TypeA)
	require.False(t, r.RecursionAvailable)
}

// TestSRVRecordDefaultWeight: every SRV record carries the configured
// weight, priority 0 (resolver.formatSRV).
func TestSRVRecordDefaultWeight(t *testing.T) {
	s := startService(t, masterConfig(t, []string{"192.0.2.250:5050"}, `,"SRVRecordDefaultWeight":7`), ServiceOptions{Logger: discardLogger(), State: DemoState})
	require.Eventually(t, s.Master.Loaded, 10*time.Second, 10*time.Millisecond)
	r := exchange(t, "udp", s.Addrs()[0], "_car-store._tcp.marathon.mesos.", dns.TypeSRV)
	require.NotEmpty(t, r.Answer)
	for _, rr := range r.Answer {
		srv := rr.(*dns.SRV)
		require.Equal(t, uint16(7), srv.Weight)
		require.Equal(t, uint16(0), srv.Priority)
	}
}

// TestEnumerationOff: /v1/enumerate exists only with enumerationOn, as
// Mesos-DNS's configureHTTP registers it.
func TestEnumerationOff(t *testing.T) {
	for _, on := range []bool{true, false} {
		cfg := masterConfig(t, []string{"192.0.2.250:5050"}, `,"http":"127.0.0.1:0","enumerationOn":`+map[bool]string{true: "true", false: "false"}[on])
		s := startService(t, cfg, ServiceOptions{Logger: discardLogger(), State: DemoState})
		resp, err := http.Get("http://" + s.Master.HTTPAddr() + "/v1/enumerate")
		require.NoError(t, err)
		resp.Body.Close()
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		require.Equal(t, want, resp.StatusCode)
	}
}

// TestHTTPOnly: an empty master.listen (Mesos-DNS's dnsOn false) binds no
// DNS port and still serves the API.
func TestHTTPOnly(t *testing.T) {
	cfg := masterConfig(t, []string{"192.0.2.250:5050"}, `,"http":"127.0.0.1:0"`)
	cfg.Listen = nil
	ctx, cancel := context.WithCancel(t.Context())
	s, err := NewService(ctx, cfg, ServiceOptions{Logger: discardLogger(), State: DemoState})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	require.Empty(t, s.Addrs())
	require.Eventually(t, s.Master.Loaded, 10*time.Second, 10*time.Millisecond)
	resp, err := http.Get("http://" + s.Master.HTTPAddr() + "/v1/hosts/nginx.marathon.mesos")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	require.NoError(t, <-done)
}

// TestMesosHTTPS: with MesosHTTPSOn the state is fetched over HTTPS,
// verified against CACertFile, with the Basic credentials of
// MesosCredentials (Mesos-DNS's httpcli.TLSConfig and basic.Doer); wrong
// credentials or an unknown authority fail the poll.
func TestMesosHTTPS(t *testing.T) {
	fake, ca := testsupport.NewFakeMesosMasterTLS(t, DemoState, "dns", "s3cret")
	for _, tc := range []struct {
		name, extra string
		ok          bool
	}{
		{"verified, authenticated", `,"MesosHTTPSOn":true,"CACertFile":"` + ca + `","MesosCredentials":{"principal":"dns","secret":"s3cret"}`, true},
		{"wrong secret", `,"MesosHTTPSOn":true,"CACertFile":"` + ca + `","MesosCredentials":{"principal":"dns","secret":"x"}`, false},
		{"no credentials", `,"MesosHTTPSOn":true,"CACertFile":"` + ca + `"`, false},
		{"unknown authority", `,"MesosHTTPSOn":true,"MesosCredentials":{"principal":"dns","secret":"s3cret"}`, false},
		{"plain HTTP", `,"MesosCredentials":{"principal":"dns","secret":"s3cret"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMaster(t, masterConfig(t, []string{fake.Addr()}, tc.extra))
			err := m.Poll(t.Context())
			if tc.ok {
				require.NoError(t, err)
				require.Positive(t, m.Stats().Tasks)
			} else {
				require.Error(t, err)
			}
		})
	}
	_, err := NewMaster(masterConfig(t, []string{fake.Addr()}, `,"MesosHTTPSOn":true,"CACertFile":"/nonexistent/ca.pem"`), discardLogger())
	require.ErrorContains(t, err, "master.CACertFile")
}

// BenchmarkForwardOutsideZone is one external name asked on the
// authoritative port with master.resolvers set (Mesos-DNS's externalOn):
// the handler's blocking path, a race to one fake resolver on loopback
// and the relayed reply. It measures what the port adds per forwarded
// query (allocations, CPU); the round trip to the resolver dominates the
// time.
func BenchmarkForwardOutsideZone(b *testing.B) {
	up := testsupport.StartUpstream(b)
	cfg := masterConfig(b, []string{"192.0.2.250:5050"}, `,"resolvers":["`+up.Addr()+`"]`)
	m, err := NewMaster(cfg, discardLogger())
	require.NoError(b, err)
	fwd, err := NewForwarder(cfg, nil, discardLogger())
	require.NoError(b, err)
	b.Cleanup(fwd.Close)
	h := NewDNSHandler(zones.NewAuthority(m.Store()), nil)
	h.Forward = fwd
	q := new(dns.Msg)
	q.SetQuestion("www.example.com.", dns.TypeA)
	q.SetEdns0(1232, false)
	msg, err := q.Pack()
	require.NoError(b, err)
	req := &server.Request{Msg: msg, Client: netip.MustParseAddrPort("127.0.0.1:40000")}
	dst := make([]byte, 0, 4096)
	_, fast := h.ServeFast(req, dst)
	require.False(b, fast, "an external name leaves the read goroutine")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out := h.ServeDNS(b.Context(), req, dst)
		if len(out) < 12 || out[3]&0xF != dns.RcodeSuccess {
			b.Fatalf("reply %x", out)
		}
	}
}
