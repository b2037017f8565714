package proxy

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// BenchmarkCacheHitUDP is the cache-hit path end to end through the real
// UDP listener: clients keep a window of queries outstanding (as dnsperf
// does) over 1000 cached names. Run it with -cpu 1 for the one-core
// figure; qps is reported.
func BenchmarkCacheHitUDP(b *testing.B) {
	u := testsupport.StartUpstream(b, testsupport.WithTTL(86400))
	n := startCachedNode(b, testsupport.NewClock(), []*testsupport.Upstream{u}, func(c *config.Config) {
		c.Cache.PrefetchHits = 0
	})
	const names = 1000
	queries := make([][]byte, names)
	for i := range queries {
		m := msg(fmt.Sprintf("h%06d.example.com.", i), dns.TypeA)
		ask(b, n.addr, "udp", m)
		var err error
		queries[i], err = m.Pack()
		require.NoError(b, err)
	}
	require.Equal(b, names, u.Queries())

	const clients, window = 4, 32
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		quota := b.N / clients
		if c < b.N%clients {
			quota++
		}
		wg.Go(func() {
			if err := pump(n.addr, queries, c, quota, window); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "qps")
	require.Equal(b, names, u.Queries(), "every measured query was a hit")
}

// pump sends quota queries over one socket, window at a time outstanding,
// and checks that each reply is a NOERROR answer.
func pump(addr string, queries [][]byte, seed, quota, window int) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	q := make([]byte, 512)
	buf := make([]byte, 4096)
	sent, got := 0, 0
	send := func() error {
		src := queries[(seed*7919+sent)%len(queries)]
		n := copy(q, src)
		binary.BigEndian.PutUint16(q, uint16(sent))
		sent++
		_, err := c.Write(q[:n])
		return err
	}
	for sent < min(window, quota) {
		if err := send(); err != nil {
			return err
		}
	}
	for got < quota {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("after %d of %d replies: %w", got, quota, err)
		}
		if n < 12 || buf[3]&0xF != 0 || binary.BigEndian.Uint16(buf[6:]) == 0 {
			return fmt.Errorf("unexpected reply % x", buf[:min(n, 16)])
		}
		got++
		if sent < quota {
			if err := send(); err != nil {
				return err
			}
		}
	}
	return nil
}
