package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func desc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, labels, nil)
}

// Descriptions of the metrics built at scrape time.
var (
	dRequests  = desc("dns", "requests_total", "DNS queries received, by routing zone, query type and transport.", "zone", "type", "proto")
	dResponses = desc("dns", "responses_total", "DNS replies sent, by rcode (\"other\" includes queries dropped without a reply).", "rcode")

	dMalformed = desc("dns", "malformed_total", "Unparseable messages received, dropped or answered FORMERR.")
	dDenied    = desc("dns", "denied_total", "Queries refused because the client is outside the allowed networks.")
	dOverload  = desc("dns", "overload_total", "Queries answered SERVFAIL because the in-flight race cap was reached.")
	dUnrouted  = desc("dns", "unrouted_total", "Cluster-domain queries answered SERVFAIL because no upstream group serves the cluster domain.")
	dInFlight  = desc("upstream", "inflight_races", "Upstream races in flight.")
	dWaiting   = desc("dns", "waiting_queries", "Client queries waiting on an upstream race.")

	dLegs     = desc("upstream", "requests_total", "Queries sent to an upstream (race legs).", "group", "upstream")
	dWins     = desc("upstream", "wins_total", "Races won by an upstream: its reply went to the client.", "group", "upstream")
	dTimeouts = desc("upstream", "timeouts_total", "Legs that got no reply from an upstream before the race deadline.", "group", "upstream")
	dErrors   = desc("upstream", "errors_total", "Legs that failed: SERVFAIL, REFUSED, NOTIMP, FORMERR, garbage or network error.", "group", "upstream")
	dFallback = desc("upstream", "0x20_fallbacks_total", "Times an upstream was seen to normalise the case of the question, after which its replies no longer have to echo DNS 0x20's randomized case.", "group", "upstream")
	dRaces    = desc("upstream", "races_total", "Upstream races by outcome.", "group", "outcome")
	dHealthy  = desc("upstream", "healthy", "1 when the passive health check considers the upstream healthy.", "group", "upstream")
	dEWMA     = desc("upstream", "latency_ewma_seconds", "Smoothed reply latency of an upstream.", "group", "upstream")

	dTLSHandshakes  = desc("upstream", "tls_handshakes_total", "TLS handshakes completed with a DNS over TLS upstream (connections opened).", "group", "upstream")
	dTLSResumptions = desc("upstream", "tls_resumptions_total", "TLS handshakes with a DNS over TLS upstream that resumed an earlier session.", "group", "upstream")
	dTLSCertErrors  = desc("upstream", "tls_certificate_errors_total", "TLS handshakes with a DNS over TLS upstream that failed because its certificate did not verify.", "group", "upstream")
	dTLSConns       = desc("upstream", "tls_connections", "Open connections to a DNS over TLS upstream.", "group", "upstream")

	dCacheEntries   = desc("cache", "entries", "Entries in the response cache.")
	dCacheAnswers   = desc("cache", "answers", "Cache entries that answer a question (all but cached SERVFAILs).")
	dCacheBytes     = desc("cache", "bytes", "Memory accounted to response cache entries.")
	dCacheHits      = desc("cache", "hits_total", "Queries answered from the cache.")
	dCacheMisses    = desc("cache", "misses_total", "Queries not found in the cache.")
	dCacheEvictions = desc("cache", "evictions_total", "Entries evicted to stay within the size bounds.")
	dCacheStale     = desc("cache", "stale_total", "Answers served from expired entries because every upstream failed.")
	dCachePrefetch  = desc("cache", "prefetch_total", "Background refreshes of popular entries.")
	dCacheCoalesced = desc("cache", "coalesced_total", "Cache misses that joined an identical query already in flight.")

	dZoneRecords = desc("zone", "records", "Records in an authoritative zone.", "zone")
	dZoneSerial  = desc("zone", "serial", "SOA serial of an authoritative zone.", "zone")

	dPolls        = desc("state", "polls_total", "Polls of the Mesos master's state.")
	dPollFailures = desc("state", "poll_failures_total", "Failed polls of the Mesos master's state.")
	dPollLast     = desc("state", "poll_last_duration_seconds", "Duration of the latest state poll.")
	dPollLastOK   = desc("state", "poll_last_success_timestamp_seconds", "Time of the last successful state poll.")

	dReloads      = desc("config", "reloads_total", "Configuration reloads, by result.", "result")
	dReloadLastOK = desc("config", "last_reload_success_timestamp_seconds", "Time of the last applied configuration reload.")
)

// collector builds the counters held in atomics, and reads the snapshot
// sources, at scrape time.
type collector Metrics

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		dRequests, dResponses, dMalformed, dDenied, dOverload, dUnrouted, dInFlight, dWaiting, dLegs, dWins, dTimeouts, dErrors, dFallback, dRaces, dHealthy, dEWMA,
		dTLSHandshakes, dTLSResumptions, dTLSCertErrors, dTLSConns,
		dCacheEntries, dCacheAnswers, dCacheBytes, dCacheHits, dCacheMisses, dCacheEvictions, dCacheStale,
		dCachePrefetch, dCacheCoalesced, dZoneRecords, dZoneSerial, dPolls, dPollFailures, dPollLast, dPollLastOK,
		dReloads, dReloadLastOK,
	} {
		ch <- d
	}
}

func counter(d *prometheus.Desc, v uint64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	m.queries.zones.each(func(zone string, z *zoneCounters) {
		for t := range numTypes {
			for p := range numProtos {
				if v := z[t][p].Load(); v > 0 {
					ch <- counter(dRequests, v, zone, typeName(t), Proto(p).String())
				}
			}
		}
	})
	for rc := range numRcodes {
		if v := m.queries.rcodes[rc].Load(); v > 0 {
			ch <- counter(dResponses, v, rcodeName(rc))
		}
	}
	if f := m.proxySrc.Load(); f != nil {
		p := (*f)()
		ch <- counter(dMalformed, p.Malformed)
		ch <- counter(dDenied, p.Denied)
		ch <- counter(dOverload, p.Overload)
		ch <- counter(dUnrouted, p.Unrouted)
		ch <- gauge(dInFlight, float64(p.InFlight))
		ch <- gauge(dWaiting, float64(p.Waiting))
	}
	m.legs.each(func(group, addr string, u *upstreamCounters) {
		ch <- counter(dLegs, u.legs.Load(), group, addr)
		ch <- counter(dWins, u.wins.Load(), group, addr)
		ch <- counter(dTimeouts, u.timeouts.Load(), group, addr)
		ch <- counter(dErrors, u.errors.Load(), group, addr)
		ch <- counter(dFallback, u.caseFallbacks.Load(), group, addr)
	})
	m.races.each(func(group string, r *raceCounters) {
		for o := range numOutcomes {
			ch <- counter(dRaces, r[o].Load(), group, o.String())
		}
	})
	if f := m.upstreamSrc.Load(); f != nil {
		for _, u := range (*f)() {
			h := 0.0
			if u.Healthy {
				h = 1
			}
			ch <- gauge(dHealthy, h, u.Group, u.Addr)
			ch <- gauge(dEWMA, u.Latency.Seconds(), u.Group, u.Addr)
			if t := u.TLS; t != nil {
				ch <- counter(dTLSHandshakes, t.Handshakes, u.Group, u.Addr)
				ch <- counter(dTLSResumptions, t.Resumptions, u.Group, u.Addr)
				ch <- counter(dTLSCertErrors, t.CertErrors, u.Group, u.Addr)
				ch <- gauge(dTLSConns, float64(t.Connections), u.Group, u.Addr)
			}
		}
	}
	if f := m.cacheSrc.Load(); f != nil {
		s := (*f)()
		ch <- gauge(dCacheEntries, float64(s.Entries))
		ch <- gauge(dCacheAnswers, float64(s.Answers))
		ch <- gauge(dCacheBytes, float64(s.Bytes))
		ch <- counter(dCacheHits, s.Hits)
		ch <- counter(dCacheMisses, s.Misses)
		ch <- counter(dCacheEvictions, s.Evictions)
		ch <- counter(dCacheStale, s.Stale)
		ch <- counter(dCachePrefetch, s.Prefetch)
		ch <- counter(dCacheCoalesced, s.Coalesced)
	}
	if f := m.zoneSrc.Load(); f != nil {
		for _, z := range (*f)() {
			ch <- gauge(dZoneRecords, float64(z.Records), z.Origin)
			ch <- gauge(dZoneSerial, float64(z.Serial), z.Origin)
		}
	}
	if f := m.pollSrc.Load(); f != nil {
		p := (*f)()
		ch <- counter(dPolls, p.Polls)
		ch <- counter(dPollFailures, p.Failures)
		ch <- gauge(dPollLast, p.LastDuration.Seconds())
		if !p.LastSuccess.IsZero() {
			ch <- gauge(dPollLastOK, float64(p.LastSuccess.UnixNano())/float64(time.Second))
		}
	} else {
		ch <- counter(dPollFailures, m.pollFailures.Load())
		if t := m.pollLastOK.Load(); t != 0 {
			ch <- gauge(dPollLastOK, unixSeconds(t))
		}
	}
	ch <- counter(dReloads, m.reloadOK.Load(), "success")
	ch <- counter(dReloads, m.reloadFailed.Load(), "failure")
	if t := m.reloadLastOK.Load(); t != 0 {
		ch <- gauge(dReloadLastOK, unixSeconds(t))
	}
}

func unixSeconds(ns int64) float64 { return float64(ns) / float64(time.Second) }
