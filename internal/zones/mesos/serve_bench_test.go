package mesos

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/spartan-dns/spartan/internal/zones"
)

// BenchmarkAuthoritativeUDP is master mode's query path end to end: the
// synthetic cluster's zone (10,000 agents, 100,000 tasks) served by a
// Service through the real UDP listener, four clients keeping 32 queries
// outstanding each (as dnsperf does), over 1000 task names. Run it with
// -cpu 1 for the one-core figure to compare with the proxy's
// BenchmarkCacheHitUDP; qps is reported.
func BenchmarkAuthoritativeUDP(b *testing.B) {
	data := benchData(b)
	// No refresh during the run: only queries are measured.
	cfg := masterConfig(b, []string{"10.0.0.1:5050"}, `,"refreshSeconds":86400`)
	s := startService(b, cfg, ServiceOptions{Logger: discardLogger(), State: data}, resolveAgentsLocally(b, data))
	// Run's first poll builds the zone; wait for it to finish.
	require.Eventually(b, func() bool { return s.Master.Stats().Polls > 0 }, time.Minute, 10*time.Millisecond)
	require.Empty(b, s.Master.Stats().LastError)
	addr := s.Addrs()[0]

	for _, tc := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"A", "app-%d.marathon.mesos.", dns.TypeA},
		{"SRV", "_app-%d._tcp.marathon.mesos.", dns.TypeSRV},
	} {
		b.Run(tc.name, func(b *testing.B) {
			queries := make([][]byte, 1000)
			for i := range queries {
				m := new(dns.Msg)
				m.SetQuestion(fmt.Sprintf(tc.qname, i), tc.qtype)
				m.SetEdns0(1232, false)
				var err error
				queries[i], err = m.Pack()
				require.NoError(b, err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			elapsed, err := testsupport.LoadUDP(addr, queries, b.N, 4, 32)
			b.StopTimer()
			require.NoError(b, err)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "qps")
		})
	}
}

// BenchmarkDNSHandler is the handler alone, without sockets, for a task A
// query with EDNS in the 100,000-task zone: "general" unpacks, looks up
// and packs every time; "memo" is the handler master mode runs, which
// patches the stored reply of a repeated question, behind the default
// Guard (client networks and rate limiting); "memo-unguarded" is it
// without the Guard.
func BenchmarkDNSHandler(b *testing.B) {
	st, err := DecodeState(bytes.NewReader(benchData(b)))
	require.NoError(b, err)
	z, _ := BuildZone(st, goldenOptions(), 1)
	auth := zones.NewAuthority(zones.NewStore(z))
	m := new(dns.Msg)
	m.SetQuestion("app-4242.marathon.mesos.", dns.TypeA)
	m.SetEdns0(1232, false)
	wire, err := m.Pack()
	require.NoError(b, err)
	for _, tc := range []struct {
		name  string
		h     DNSHandler
		guard bool
	}{
		{"general", DNSHandler{Auth: auth}, false},
		{"memo", NewDNSHandler(auth, nil), true},
		{"memo-unguarded", NewDNSHandler(auth, nil), false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if tc.guard {
				// Fresh accounts for every run: each run's clock
				// starts over.
				guard, err := NewGuard(config.DefaultMaster())
				require.NoError(b, err)
				tc.h.Guard = guard
			}
			// Clients in 4096 /24s of 10.0.0.0/8, with time moving 1 µs
			// per query: each prefix sends about 244 queries a second,
			// under any rate limit, so the accounting is measured, not
			// the dropping.
			clients := make([]netip.AddrPort, 4096)
			for i := range clients {
				clients[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 7}), 5300)
			}
			now := time.Now()
			req := &server.Request{Msg: wire, Client: clients[0], Received: now}
			dst := make([]byte, 0, 4096)
			requireAnswered(b, tc.h, req, dst)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				req.Client = clients[i&(len(clients)-1)]
				req.Received = now.Add(time.Duration(i) * time.Microsecond)
				tc.h.ServeFast(req, dst)
			}
		})
	}
}

// BenchmarkDNSHandlerLimited is the memo path for one client flooding far
// over its rate limit: every reply is dropped or slipped, and that costs
// no more than answering.
func BenchmarkDNSHandlerLimited(b *testing.B) {
	st, err := DecodeState(bytes.NewReader(benchData(b)))
	require.NoError(b, err)
	z, _ := BuildZone(st, goldenOptions(), 1)
	m := new(dns.Msg)
	m.SetQuestion("app-4242.marathon.mesos.", dns.TypeA)
	m.SetEdns0(1232, false)
	wire, err := m.Pack()
	require.NoError(b, err)
	guard, err := NewGuard(config.DefaultMaster())
	require.NoError(b, err)
	h := NewDNSHandler(zones.NewAuthority(zones.NewStore(z)), nil)
	h.Guard = guard
	req := &server.Request{Msg: wire, Client: netip.MustParseAddrPort("10.9.9.9:5300"), Received: time.Now()}
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeFast(req, dst)
	}
	b.StopTimer()
	require.Positive(b, guard.Stats().Dropped)
	require.Positive(b, guard.Stats().Slipped)
}

// BenchmarkDNSHandlerNavstar is BenchmarkDNSHandler for master mode's
// whole authority (the cluster zone, thisdcos.directory and the aliases)
// and a question of each kind: a cluster name, a dcos-net task name, a
// cluster name under mesos.thisdcos.directory and a name under
// thisdcos.global. "memo" is the handler master mode runs (without the
// Guard, measured above), "general" builds every reply; the aliased names
// pay for renaming only on the general path.
func BenchmarkDNSHandlerNavstar(b *testing.B) {
	st, err := DecodeState(bytes.NewReader(benchData(b)))
	require.NoError(b, err)
	opt := goldenOptions()
	z, _ := BuildZone(st, opt, 1)
	nopt := *opt
	nopt.Resolve = agentResolver(st)
	nz := BuildNavstarZone(st, &nopt, 1)
	auth := zones.NewAuthority(zones.NewStore(z), zones.NewStore(nz)).WithAliases(NavstarAliases(opt.Domain)...)
	for _, name := range []string{
		"app-4242.marathon.mesos.",
		"app-4242.marathon.autoip.dcos.thisdcos.directory.",
		"app-4242.marathon.mesos.thisdcos.directory.",
		"app-4242.marathon.autoip.dcos.thisdcos.global.",
	} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.SetEdns0(1232, false)
		wire, err := m.Pack()
		require.NoError(b, err)
		for _, h := range []struct {
			name string
			h    DNSHandler
		}{{"general", DNSHandler{Auth: auth}}, {"memo", NewDNSHandler(auth, nil)}} {
			b.Run(strings.TrimSuffix(name, ".")+"/"+h.name, func(b *testing.B) {
				req := &server.Request{Msg: wire, Client: netip.MustParseAddrPort("10.0.0.7:5300"), Received: time.Now()}
				dst := make([]byte, 0, 4096)
				r := requireAnswered(b, h.h, req, dst)
				require.Equal(b, name, r.Answer[0].Header().Name)
				b.ReportAllocs()
				for b.Loop() {
					h.h.ServeFast(req, dst)
				}
			})
		}
	}
}

// requireAnswered serves req once, before a benchmark's loop, and checks
// that it gets an authoritative answer, which it returns.
func requireAnswered(b *testing.B, h DNSHandler, req *server.Request, dst []byte) *dns.Msg {
	b.Helper()
	reply, ok := h.ServeFast(req, dst)
	require.True(b, ok)
	var r dns.Msg
	require.NoError(b, r.Unpack(reply))
	require.True(b, r.Authoritative)
	require.NotEmpty(b, r.Answer)
	return &r
}
