package proxy

import (
	"encoding/binary"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// benchClient sends a prepared query over its own UDP socket and waits for
// the reply with the same ID: the least a client can cost.
type benchClient struct {
	c   *net.UDPConn
	q   []byte
	buf []byte
	id  uint16
}

func newBenchClient(b *testing.B, addr, name string) *benchClient {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	require.NoError(b, err)
	c, err := net.DialUDP("udp", nil, raddr)
	require.NoError(b, err)
	b.Cleanup(func() { c.Close() })
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	q, err := m.Pack()
	require.NoError(b, err)
	return &benchClient{c: c, q: q, buf: make([]byte, 4096)}
}

func (bc *benchClient) exchange(b *testing.B) {
	bc.id++
	binary.BigEndian.PutUint16(bc.q, bc.id)
	if _, err := bc.c.Write(bc.q); err != nil {
		b.Fatal(err)
	}
	_ = bc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := bc.c.Read(bc.buf)
		if err != nil {
			b.Fatal(err)
		}
		if n >= 12 && binary.BigEndian.Uint16(bc.buf) == bc.id {
			if bc.buf[3]&0xF != 0 {
				b.Fatalf("rcode %d", bc.buf[3]&0xF)
			}
			return
		}
	}
}

// BenchmarkForward is the cache-miss forwarding path end to end: client
// UDP socket → listener → query path → one upstream leg on a fresh socket
// → fake upstream on loopback → reply rewritten for the client. Parallel
// clients measure throughput (ns/op is per query across all of them).
func BenchmarkForward(b *testing.B) {
	u := testsupport.StartUpstream(b)
	n := startNode(b, func(c *config.Config) { c.Upstreams = []string{u.Addr()} })
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		bc := newBenchClient(b, n.addr, "www.example.")
		for pb.Next() {
			bc.exchange(b)
		}
	})
}

// BenchmarkLocalZone is the ready.spartan health check, answered on the
// listener's read goroutine.
func BenchmarkLocalZone(b *testing.B) {
	u := testsupport.StartUpstream(b)
	n := startNode(b, func(c *config.Config) { c.Upstreams = []string{u.Addr()} })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		bc := newBenchClient(b, n.addr, "ready.spartan.")
		for pb.Next() {
			bc.exchange(b)
		}
	})
}

// BenchmarkBlackholeAndFast: one upstream blackholed, one answering after
// 2 ms. It reports the latency percentiles a client sees through the
// proxy, and the same client's percentiles asking the fast upstream
// directly; the goal is a proxy p99 within 1 ms of the direct one.
func BenchmarkBlackholeAndFast(b *testing.B) {
	dead := testsupport.StartUpstream(b, testsupport.WithBehavior(testsupport.Blackhole))
	fast := testsupport.StartUpstream(b, testsupport.WithLatency(2*time.Millisecond))
	n := startNode(b, func(c *config.Config) { c.Upstreams = []string{dead.Addr(), fast.Addr()} })
	for _, target := range []struct{ name, addr string }{{"proxy", n.addr}, {"direct", fast.Addr()}} {
		b.Run(target.name, func(b *testing.B) {
			bc := newBenchClient(b, target.addr, "www.example.")
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				bc.exchange(b)
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(pct(1), "max-ms")
		})
	}
}
