package cache

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/dnswire"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// numberedA returns a packed query and reply for host-NNNNNN.example.com. A
// with the digits at digitsAt in both, so callers can mint distinct names
// without packing.
func numberedA(t testing.TB) (query, reply []byte, digitsAt int) {
	t.Helper()
	name := "host-000000.example.com."
	qm := testsupport.NewQuery(name, dns.TypeA, testsupport.WithEDNS(1232, false))
	query, err := qm.Pack()
	require.NoError(t, err)
	reply = testsupport.PackReply(t, qm, testsupport.ReplySpec{Answer: testsupport.ARecords(t, name, 300, 1), OptSize: 1232})
	return query, reply, dnswire.HeaderLen + 1 + len("host-")
}

func setDigits(b []byte, at, n int) {
	for i := 5; i >= 0; i-- {
		b[at+i] = byte('0' + n%10)
		n /= 10
	}
}

// measureCache fills a cache with n distinct A answers and returns the heap
// it retains and the bytes it accounted.
func measureCache(t testing.TB, n int) (heap, accounted int64) {
	query, reply, at := numberedA(t)
	cfg := config.Default().Cache
	cfg.MaxEntries = n
	cfg.MaxBytes = 1 << 40
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := New(Options{Config: cfg})
	require.NoError(t, err)
	var q dnswire.Query
	for i := range n {
		setDigits(query, at, i)
		setDigits(reply, at, i)
		require.NoError(t, q.Parse(query))
		r, err := dnswire.ParseResponse(&q, reply)
		require.NoError(t, err)
		require.True(t, c.Insert(&q, r))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	require.Equal(t, n, c.Stats().Entries)
	heap = int64(after.HeapAlloc) - int64(before.HeapAlloc)
	accounted = c.Stats().Bytes
	runtime.KeepAlive(c)
	return heap, accounted
}

// TestEntryOverhead checks the memory accounting against the heap: 100,000
// cached A answers must fit in 64 MiB, and the bytes the cache accounts
// must not be below what it really holds (EntryOverhead is large enough).
func TestEntryOverhead(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a cache with 100,000 entries")
	}
	const n = 100_000
	heap, accounted := measureCache(t, n)
	t.Logf("100,000 A answers: heap %d bytes (%.0f bytes/entry), accounted %d (%.0f bytes/entry)",
		heap, float64(heap)/n, accounted, float64(accounted)/n)
	require.Less(t, heap, int64(64<<20))
	require.GreaterOrEqual(t, accounted, heap, "EntryOverhead under-reports the real cost")
}

// BenchmarkMemory100kA reports the heap held by 100,000 cached A answers.
func BenchmarkMemory100kA(b *testing.B) {
	for range b.N {
		heap, accounted := measureCache(b, 100_000)
		b.ReportMetric(float64(heap)/100_000, "heap-bytes/entry")
		b.ReportMetric(float64(accounted)/100_000, "accounted-bytes/entry")
		b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	}
}

// BenchmarkGetHit measures the hit path: parse the query from the wire and
// write the reply into a reused buffer.
func BenchmarkGetHit(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []testsupport.QueryOption
	}{
		{"plain", nil},
		{"edns", []testsupport.QueryOption{testsupport.WithEDNS(1232, false)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := New(Options{Config: config.Default().Cache})
			require.NoError(b, err)
			qm := testsupport.NewQuery("www.Example.com.", dns.TypeA, tc.opts...)
			query, err := qm.Pack()
			require.NoError(b, err)
			var q dnswire.Query
			require.NoError(b, q.Parse(query))
			r, err := dnswire.ParseResponse(&q, testsupport.PackReply(b, qm, testsupport.ReplySpec{Answer: testsupport.ARecords(b, "www.example.com.", 300, 2), OptSize: 1232}))
			require.NoError(b, err)
			require.True(b, c.Insert(&q, r))
			buf := make([]byte, 0, 1232)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := q.Parse(query); err != nil {
					b.Fatal(err)
				}
				out, st, _ := c.Get(&q, buf, q.UDPLimit())
				if st != Fresh || len(out) == 0 {
					b.Fatal("miss")
				}
			}
		})
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	c, err := New(Options{Config: config.Default().Cache})
	require.NoError(b, err)
	const names = 1024
	queries := make([][]byte, names)
	for i := range queries {
		name := fmt.Sprintf("n%d.example.com.", i)
		qm := testsupport.NewQuery(name, dns.TypeA)
		queries[i], err = qm.Pack()
		require.NoError(b, err)
		var q dnswire.Query
		require.NoError(b, q.Parse(queries[i]))
		r, err := dnswire.ParseResponse(&q, testsupport.PackReply(b, qm, testsupport.ReplySpec{Answer: testsupport.ARecords(b, name, 300, 1)}))
		require.NoError(b, err)
		require.True(b, c.Insert(&q, r))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var q dnswire.Query
		buf := make([]byte, 0, 512)
		i := 0
		for pb.Next() {
			i++
			if err := q.Parse(queries[i%names]); err != nil {
				b.Fatal(err)
			}
			if _, st, _ := c.Get(&q, buf, 512); st != Fresh {
				b.Fatal("miss")
			}
		}
	})
}

func BenchmarkInsert(b *testing.B) {
	query, reply, at := numberedA(b)
	c, err := New(Options{Config: config.Default().Cache, Now: func() time.Time { return time.Unix(0, 0) }})
	require.NoError(b, err)
	var q dnswire.Query
	b.ReportAllocs()
	for i := range b.N {
		setDigits(query, at, i%1_000_000)
		setDigits(reply, at, i%1_000_000)
		if err := q.Parse(query); err != nil {
			b.Fatal(err)
		}
		r, err := dnswire.ParseResponse(&q, reply)
		if err != nil {
			b.Fatal(err)
		}
		c.Insert(&q, r)
	}
}
