package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/httpserve"
	"github.com/spartan-dns/spartan/internal/metrics"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// serve starts the metrics HTTP server on a loopback port and returns its
// base URL; it stops with the test.
func serve(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := metrics.Listen(ctx, "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- httpserve.Serve(ctx, ln, m.Handler(), httpserve.Limits{}) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestScrapeAfterKnownEvents(t *testing.T) {
	m := metrics.New()
	base := serve(t, m)

	queries := []metrics.Query{
		{Zone: ".", Qtype: dns.TypeA, Proto: metrics.UDP, Rcode: dns.RcodeSuccess, Duration: 2 * time.Millisecond},
		{Zone: ".", Qtype: dns.TypeA, Proto: metrics.UDP, Rcode: dns.RcodeNameError, Duration: 3 * time.Millisecond},
		{Zone: ".", Qtype: dns.TypeAAAA, Proto: metrics.TCP, Rcode: dns.RcodeSuccess, Duration: time.Millisecond},
		{Zone: "mesos.", Qtype: dns.TypeSRV, Proto: metrics.UDP, Rcode: dns.RcodeSuccess, Duration: time.Millisecond},
		{Zone: "spartan.", Qtype: dns.TypeA, Proto: metrics.UDP, Rcode: dns.RcodeSuccess},
		{Zone: ".", Qtype: 65280, Proto: metrics.UDP, Rcode: dns.RcodeServerFailure, Duration: 2 * time.Second},
		{Zone: ".", Qtype: dns.TypeA, Proto: metrics.UDP, Rcode: -1},
	}
	for _, q := range queries {
		m.ObserveQuery(q)
	}
	m.ObserveLeg(".", "127.0.0.2:53", metrics.LegWon, time.Millisecond)
	m.ObserveLeg(".", "127.0.0.3:53", metrics.LegTimeout, 0)
	m.ObserveLeg(".", "127.0.0.2:53", metrics.LegError, 500*time.Microsecond)
	m.ObserveLeg(".", "127.0.0.3:53", metrics.LegLost, 4*time.Millisecond)
	m.ObserveLeg(".", "127.0.0.3:53", metrics.LegCancelled, 0)
	m.ObserveRace(".", metrics.RaceAnswered)
	m.ObserveRace(".", metrics.RaceAnswered)
	m.ObserveRace(".", metrics.RaceTimeout)
	m.ObserveCaseFallback(".", "127.0.0.3:53")
	m.ObservePoll(20*time.Millisecond, nil)
	m.ObservePoll(time.Second, errors.New("master unreachable"))
	m.ObserveReload(nil)
	m.ObserveReload(errors.New("bad config"))
	m.ObserveReload(errors.New("bad config"))
	m.SetCache(func() metrics.Cache {
		return metrics.Cache{Entries: 7, Answers: 6, Bytes: 4096, Hits: 11, Misses: 5, Evictions: 2, Stale: 1, Prefetch: 3, Coalesced: 4}
	})
	m.SetProxy(func() metrics.Proxy {
		return metrics.Proxy{Malformed: 9, Denied: 8, Overload: 3, Unrouted: 2, InFlight: 5, Waiting: 6}
	})
	m.SetUpstreams(func() []metrics.UpstreamState {
		return []metrics.UpstreamState{
			{Group: ".", Addr: "127.0.0.2:53", Healthy: true, Latency: 2 * time.Millisecond},
			{Group: ".", Addr: "127.0.0.3:53", Healthy: false},
			{Group: ".", Addr: "tls://127.0.0.4:853#dns.example", Healthy: true,
				TLS: &metrics.UpstreamTLS{Handshakes: 3, Resumptions: 2, CertErrors: 1, Connections: 1}},
		}
	})
	m.SetZones(func() []metrics.Zone {
		return []metrics.Zone{{Origin: "spartan.", Records: 4, Serial: 1}, {Origin: "mesos.", Records: 120, Serial: 42}}
	})

	s := testsupport.Scrape(t, base+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"spartan_dns_requests_total", []string{"zone", ".", "type", "A", "proto", "udp"}, 3},
		{"spartan_dns_requests_total", []string{"zone", ".", "type", "AAAA", "proto", "tcp"}, 1},
		{"spartan_dns_requests_total", []string{"zone", ".", "type", "other"}, 1},
		{"spartan_dns_requests_total", []string{"zone", "mesos.", "type", "SRV"}, 1},
		{"spartan_dns_requests_total", []string{"zone", "spartan."}, 1},
		{"spartan_dns_requests_total", nil, 7},
		{"spartan_dns_responses_total", []string{"rcode", "NOERROR"}, 4},
		{"spartan_dns_responses_total", []string{"rcode", "NXDOMAIN"}, 1},
		{"spartan_dns_responses_total", []string{"rcode", "SERVFAIL"}, 1},
		{"spartan_dns_responses_total", []string{"rcode", "other"}, 1},
		{"spartan_dns_request_duration_seconds", []string{"proto", "udp"}, 6},
		{"spartan_dns_request_duration_seconds", []string{"proto", "tcp"}, 1},
		{"spartan_upstream_requests_total", []string{"upstream", "127.0.0.2:53"}, 2},
		{"spartan_upstream_requests_total", []string{"upstream", "127.0.0.3:53"}, 3},
		{"spartan_upstream_wins_total", []string{"upstream", "127.0.0.2:53"}, 1},
		{"spartan_upstream_wins_total", []string{"upstream", "127.0.0.3:53"}, 0},
		{"spartan_upstream_timeouts_total", []string{"upstream", "127.0.0.3:53"}, 1},
		{"spartan_upstream_errors_total", []string{"upstream", "127.0.0.2:53"}, 1},
		{"spartan_upstream_0x20_fallbacks_total", []string{"group", ".", "upstream", "127.0.0.3:53"}, 1},
		{"spartan_upstream_0x20_fallbacks_total", []string{"group", ".", "upstream", "127.0.0.2:53"}, 0},
		{"spartan_upstream_leg_duration_seconds", []string{"group", ".", "upstream", "127.0.0.2:53"}, 2},
		{"spartan_upstream_leg_duration_seconds", []string{"group", ".", "upstream", "127.0.0.3:53"}, 1},
		{"spartan_upstream_races_total", []string{"group", ".", "outcome", "answered"}, 2},
		{"spartan_upstream_races_total", []string{"group", ".", "outcome", "timeout"}, 1},
		{"spartan_upstream_races_total", []string{"group", ".", "outcome", "failed"}, 0},
		{"spartan_upstream_healthy", []string{"upstream", "127.0.0.2:53"}, 1},
		{"spartan_upstream_healthy", []string{"upstream", "127.0.0.3:53"}, 0},
		{"spartan_upstream_latency_ewma_seconds", []string{"upstream", "127.0.0.2:53"}, 0.002},
		{"spartan_upstream_tls_handshakes_total", []string{"group", ".", "upstream", "tls://127.0.0.4:853#dns.example"}, 3},
		{"spartan_upstream_tls_resumptions_total", []string{"upstream", "tls://127.0.0.4:853#dns.example"}, 2},
		{"spartan_upstream_tls_certificate_errors_total", []string{"upstream", "tls://127.0.0.4:853#dns.example"}, 1},
		{"spartan_upstream_tls_connections", []string{"upstream", "tls://127.0.0.4:853#dns.example"}, 1},
		{"spartan_upstream_tls_handshakes_total", nil, 3}, // only TLS upstreams have it
		{"spartan_cache_entries", nil, 7},
		{"spartan_cache_answers", nil, 6},
		{"spartan_dns_malformed_total", nil, 9},
		{"spartan_dns_denied_total", nil, 8},
		{"spartan_dns_overload_total", nil, 3},
		{"spartan_dns_unrouted_total", nil, 2},
		{"spartan_upstream_inflight_races", nil, 5},
		{"spartan_dns_waiting_queries", nil, 6},
		{"spartan_cache_bytes", nil, 4096},
		{"spartan_cache_hits_total", nil, 11},
		{"spartan_cache_misses_total", nil, 5},
		{"spartan_cache_evictions_total", nil, 2},
		{"spartan_cache_stale_total", nil, 1},
		{"spartan_cache_prefetch_total", nil, 3},
		{"spartan_cache_coalesced_total", nil, 4},
		{"spartan_zone_records", []string{"zone", "mesos."}, 120},
		{"spartan_zone_serial", []string{"zone", "mesos."}, 42},
		{"spartan_zone_serial", []string{"zone", "spartan."}, 1},
		{"spartan_state_poll_duration_seconds", nil, 2},
		{"spartan_state_poll_failures_total", nil, 1},
		{"spartan_config_reloads_total", []string{"result", "success"}, 1},
		{"spartan_config_reloads_total", []string{"result", "failure"}, 2},
	} {
		t.Run(fmt.Sprintf("%s%v", c.name, c.labels), func(t *testing.T) {
			require.InDelta(t, c.want, s.Must(t, c.name, c.labels...), 1e-9)
		})
	}
	// The 2 s SERVFAIL lands in a high bucket, the fast ones in low ones.
	h := s["spartan_dns_request_duration_seconds"]
	require.NotNil(t, h)
	for _, series := range h.GetMetric() {
		if series.GetLabel()[0].GetValue() != "udp" {
			continue
		}
		require.InDelta(t, 2.0+0.006, series.GetHistogram().GetSampleSum(), 1e-6)
	}
	for _, name := range []string{"spartan_state_poll_last_success_timestamp_seconds", "spartan_config_last_reload_success_timestamp_seconds", "go_goroutines", "process_open_fds"} {
		require.Contains(t, s, name)
	}

	// A poller source replaces the hook's counters.
	m.SetPoller(func() metrics.Poll {
		return metrics.Poll{Polls: 9, Failures: 2, LastDuration: 150 * time.Millisecond, LastSuccess: time.Unix(1700000000, 0)}
	})
	s = testsupport.Scrape(t, base+"/metrics")
	require.Equal(t, 9.0, s.Must(t, "spartan_state_polls_total"))
	require.Equal(t, 2.0, s.Must(t, "spartan_state_poll_failures_total"))
	require.InDelta(t, 0.15, s.Must(t, "spartan_state_poll_last_duration_seconds"), 1e-9)
	require.Equal(t, 1700000000.0, s.Must(t, "spartan_state_poll_last_success_timestamp_seconds"))

	// Removing the cache source removes its series.
	m.SetCache(nil)
	s = testsupport.Scrape(t, base+"/metrics")
	require.NotContains(t, s, "spartan_cache_hits_total")
}

func TestHealthAndReady(t *testing.T) {
	m := metrics.New()
	base := serve(t, m)

	code, body := get(t, base+"/health")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)

	code, body = get(t, base+"/ready")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "starting")

	var mu sync.Mutex
	var readyErr error = errors.New("no healthy upstream in . and cache cold")
	m.SetReady(func() error { mu.Lock(); defer mu.Unlock(); return readyErr })
	code, body = get(t, base+"/ready")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "no healthy upstream")

	mu.Lock()
	readyErr = nil
	mu.Unlock()
	code, body = get(t, base+"/ready")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ready\n", body)

	code, _ = get(t, base+"/nonexistent")
	require.Equal(t, http.StatusNotFound, code)
}

func TestExtraHandlersAreServed(t *testing.T) {
	m := metrics.New()
	m.Handle("POST /cache/flush", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "flushed")
	}))
	base := serve(t, m)

	resp, err := http.Post(base+"/cache/flush", "text/plain", nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "flushed\n", string(body))

	// Only the method registered is routed; metrics keep working.
	code, _ := get(t, base+"/cache/flush")
	require.Equal(t, http.StatusMethodNotAllowed, code)
	code, _ = get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
}

func TestListenFailureIsReported(t *testing.T) {
	ctx := context.Background()
	ln, err := metrics.Listen(ctx, "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = metrics.Listen(ctx, ln.Addr().String())
	require.ErrorContains(t, err, "metrics: listen on "+ln.Addr().String())
}

func TestObserveQueryDoesNotAllocate(t *testing.T) {
	m := metrics.New()
	q := metrics.Query{Zone: ".", Qtype: dns.TypeA, Proto: metrics.UDP, Rcode: 0, Duration: time.Millisecond}
	m.ObserveQuery(q) // first use of the zone creates its counters
	m.ObserveLeg(".", "127.0.0.2:53", metrics.LegWon, time.Millisecond)
	m.ObserveRace(".", metrics.RaceAnswered)
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		m.ObserveQuery(q)
		m.ObserveLeg(".", "127.0.0.2:53", metrics.LegWon, time.Millisecond)
		m.ObserveRace(".", metrics.RaceAnswered)
	}))
}

// TestConcurrentObserveAndScrape runs observers on new and known label
// values against scrapes; with -race it checks the copy-on-write maps, and
// the final counts check no increment is lost.
func TestConcurrentObserveAndScrape(t *testing.T) {
	m := metrics.New()
	base := serve(t, m)
	const workers, per = 8, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// The scraper runs off the test goroutine: it hands its first error
	// back instead of failing the test from there.
	scraped := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				scraped <- nil
				return
			default:
			}
			if err := scrapeOnce(base + "/metrics"); err != nil {
				scraped <- err
				return
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			zone := fmt.Sprintf("z%d.", w%4)
			for i := range per {
				m.ObserveQuery(metrics.Query{Zone: zone, Qtype: uint16(i % 300), Proto: metrics.Proto(i % 2)})
				m.ObserveLeg(zone, fmt.Sprintf("127.0.0.%d:53", i%3+1), metrics.LegWon, time.Microsecond)
			}
		}()
	}
	wg.Wait()
	close(stop)
	require.NoError(t, <-scraped)
	s := testsupport.Scrape(t, base+"/metrics")
	require.Equal(t, float64(workers*per), s.Must(t, "spartan_dns_requests_total"))
	require.Equal(t, float64(workers*per), s.Must(t, "spartan_upstream_wins_total"))
	require.Equal(t, float64(2*per), s.Must(t, "spartan_dns_requests_total", "zone", "z3."))
}

// scrapeOnce fetches and strictly parses one exposition, returning what
// went wrong instead of failing the test (for use off the test goroutine).
func scrapeOnce(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scraping %s: status %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	if _, err := parser.TextToMetricFamilies(resp.Body); err != nil {
		return fmt.Errorf("parsing %s: %w", url, err)
	}
	return nil
}

func TestZoneLabelsAreBounded(t *testing.T) {
	m := metrics.New()
	for i := range 1500 {
		m.ObserveQuery(metrics.Query{Zone: fmt.Sprintf("z%d.", i), Qtype: dns.TypeA})
	}
	s := testsupport.Scrape(t, serve(t, m)+"/metrics")
	// 1000 zones by name, the rest under "other".
	require.Equal(t, 1001, len(s["spartan_dns_requests_total"].GetMetric()))
	require.Equal(t, float64(500), s.Must(t, "spartan_dns_requests_total", "zone", "other"))
	require.Equal(t, float64(1500), s.Must(t, "spartan_dns_requests_total"))
}

func BenchmarkObserveQuery(b *testing.B) {
	m := metrics.New()
	q := metrics.Query{Zone: ".", Qtype: dns.TypeA, Proto: metrics.UDP, Duration: time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveQuery(q)
		}
	})
}

func TestNilMetricsObserveIsNoop(t *testing.T) {
	var m *metrics.Metrics
	m.ObserveQuery(metrics.Query{Zone: "."})
	m.ObserveLeg(".", "127.0.0.2:53", metrics.LegWon, time.Millisecond)
	m.ObserveRace(".", metrics.RaceAnswered)
	m.ObservePoll(time.Second, nil)
	m.ObserveReload(nil)
}

// TestMasterGuardMetrics: master mode's guard counters are exported while
// their source is set.
func TestMasterGuardMetrics(t *testing.T) {
	m := metrics.New()
	base := serve(t, m)
	s := testsupport.Scrape(t, base+"/metrics")
	require.NotContains(t, s, "spartan_master_refused_total")

	m.SetMasterGuard(func() metrics.MasterGuard {
		return metrics.MasterGuard{Refused: 3, RateLimited: 10, Dropped: 6, Slipped: 4, HeldShrinks: 2}
	})
	s = testsupport.Scrape(t, base+"/metrics")
	for name, want := range map[string]float64{
		"spartan_master_refused_total":           3,
		"spartan_master_ratelimited_total":       10,
		"spartan_master_ratelimit_dropped_total": 6,
		"spartan_master_ratelimit_slipped_total": 4,
		"spartan_state_shrinks_held_total":       2,
	} {
		require.Equal(t, want, s.Must(t, name), name)
	}
	m.SetMasterGuard(nil)
	s = testsupport.Scrape(t, base+"/metrics")
	require.NotContains(t, s, "spartan_master_refused_total")
}

// TestMasterFollowMetrics: the event stream's counters and the leader's
// source are exported while their source is set, every source value with
// the current one at 1, and ZooKeeper's state only when it is configured.
func TestMasterFollowMetrics(t *testing.T) {
	m := metrics.New()
	base := serve(t, m)
	s := testsupport.Scrape(t, base+"/metrics")
	require.NotContains(t, s, "spartan_stream_up")

	for _, tc := range []struct {
		name    string
		in      metrics.MasterFollow
		want    map[string]float64 // series without labels
		sources map[string]float64 // spartan_state_leader_source by source; nil: absent
		zk      bool               // spartan_zookeeper_leader_current present
	}{
		{
			name: "zookeeper current, streaming",
			in: metrics.MasterFollow{Streaming: true, Events: 7, EventSwaps: 3, PatchedSwaps: 2,
				LeaderSource: "zookeeper", ZooKeeper: true, ZKCurrent: true},
			want: map[string]float64{"spartan_stream_up": 1, "spartan_stream_events_total": 7,
				"spartan_stream_swaps_total": 3, "spartan_stream_patched_swaps_total": 2,
				"spartan_zookeeper_leader_current": 1},
			sources: map[string]float64{"zookeeper": 1, "masters": 0},
			zk:      true,
		},
		{
			name: "zookeeper lost, fallback to masters, stream down",
			in:   metrics.MasterFollow{Events: 9, EventSwaps: 4, PatchedSwaps: 4, LeaderSource: "masters", ZooKeeper: true},
			want: map[string]float64{"spartan_stream_up": 0, "spartan_stream_events_total": 9,
				"spartan_stream_swaps_total": 4, "spartan_stream_patched_swaps_total": 4,
				"spartan_zookeeper_leader_current": 0},
			sources: map[string]float64{"zookeeper": 0, "masters": 1},
			zk:      true,
		},
		{
			name:    "masters only",
			in:      metrics.MasterFollow{Streaming: true, LeaderSource: "masters"},
			want:    map[string]float64{"spartan_stream_up": 1, "spartan_stream_events_total": 0},
			sources: map[string]float64{"zookeeper": 0, "masters": 1},
		},
		{
			name: "fixed state",
			in:   metrics.MasterFollow{},
			want: map[string]float64{"spartan_stream_up": 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.SetMasterFollow(func() metrics.MasterFollow { return tc.in })
			s := testsupport.Scrape(t, base+"/metrics")
			for name, want := range tc.want {
				require.Equal(t, want, s.Must(t, name), name)
			}
			if tc.sources == nil {
				require.NotContains(t, s, "spartan_state_leader_source")
			}
			for src, want := range tc.sources {
				v, ok := s.Value("spartan_state_leader_source", "source", src)
				require.True(t, ok, src)
				require.Equal(t, want, v, src)
			}
			if !tc.zk {
				require.NotContains(t, s, "spartan_zookeeper_leader_current")
			}
		})
	}
	m.SetMasterFollow(nil)
	s = testsupport.Scrape(t, base+"/metrics")
	require.NotContains(t, s, "spartan_stream_up")
}
