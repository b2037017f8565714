package mesos

import (
	"bytes"
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/spartan-dns/spartan/internal/zones"
)

// The API endpoints beyond Mesos-DNS's query ones: Mesos-DNS's /v1/axfr
// and /v1/hosts/{host}/ports, and dcos-net's /v1/records.

// AXFR is Mesos-DNS's /v1/axfr (models.AXFR): the cluster zone's
// settings and its A, AAAA and SRV records, which dcos-net reads to serve
// mesos.thisdcos.directory.
type AXFR struct {
	TTL            int32
	Serial         uint32
	RefreshSeconds int
	Mname, Rname   string
	// Domain is written without the final dot, as Mesos-DNS writes it.
	Domain  string
	Records AXFRRecords
}

// AXFRRecords are the records of an AXFR by type, each a map from owner
// name (fully qualified) to the addresses, or to the SRV targets as
// "target:port".
type AXFRRecords struct {
	As, AAAAs, SRVs map[string][]string
}

// NavstarRecord is one element of dcos-net's /v1/records
// (dcos_rest_dns_handler:record_to_term): names without the final dot,
// Host an address or an SRV record's "target:port".
type NavstarRecord struct {
	Name  string `json:"name"`
	Host  string `json:"host"`
	Rtype string `json:"rtype"`
}

// apiCache holds a response body built for one set of zones, so clients
// polling a large zone (dcos-net reads /v1/axfr every 30 seconds) cost
// one encoding per zone change.
type apiCache struct {
	mu    sync.Mutex
	zones [2]*zones.Zone
	body  []byte
}

// get returns the body for the zones, building it with build when they
// changed.
func (c *apiCache) get(a, b *zones.Zone, build func() any) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.body == nil || c.zones != [2]*zones.Zone{a, b} {
		var buf bytes.Buffer
		_ = encodeJSON(&buf, build())
		c.zones, c.body = [2]*zones.Zone{a, b}, buf.Bytes()
	}
	return c.body
}

// navstarRoutes adds the endpoints to mux.
func (m *Master) navstarRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/axfr", func(w http.ResponseWriter, _ *http.Request) {
		z := m.store.Load()
		writeBody(w, m.axfrCache.get(z, nil, func() any { return m.axfr(z) }))
	})
	mux.HandleFunc("GET /v1/records", func(w http.ResponseWriter, _ *http.Request) {
		z, nz := m.store.Load(), m.navStore.Load()
		writeBody(w, m.recordsCache.get(z, nz, func() any { return navstarRecords(z, nz) }))
	})
	mux.HandleFunc("GET /v1/hosts/{host}/ports", func(w http.ResponseWriter, _ *http.Request) {
		// Mesos-DNS's answer: the endpoint was never implemented there.
		http.Error(w, "To be implemented...", http.StatusNotImplemented)
	})
}

func writeBody(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// axfr lists the cluster zone z as Mesos-DNS's /v1/axfr does.
func (m *Master) axfr(z *zones.Zone) AXFR {
	out := AXFR{
		TTL:            int32(m.cfg.TTL),
		Serial:         z.Serial(),
		RefreshSeconds: m.cfg.RefreshSeconds,
		Mname:          m.cfg.SOAMname,
		Rname:          m.cfg.SOARname,
		Domain:         strings.TrimSuffix(m.cfg.Domain, "."),
		Records:        AXFRRecords{As: map[string][]string{}, AAAAs: map[string][]string{}, SRVs: map[string][]string{}},
	}
	for _, rr := range z.Records() {
		name, host, rtype, ok := recordHost(rr)
		if !ok {
			continue
		}
		switch rtype {
		case "A":
			out.Records.As[name] = append(out.Records.As[name], host)
		case "AAAA":
			out.Records.AAAAs[name] = append(out.Records.AAAAs[name], host)
		case "SRV":
			out.Records.SRVs[name] = append(out.Records.SRVs[name], host)
		}
	}
	for _, set := range []map[string][]string{out.Records.As, out.Records.AAAAs, out.Records.SRVs} {
		for _, hosts := range set {
			slices.Sort(hosts)
		}
	}
	return out
}

// recordHost renders an A, AAAA or SRV record as Mesos-DNS and dcos-net
// list it: owner, address or "target:port", type.
func recordHost(rr dns.RR) (name, host, rtype string, ok bool) {
	switch r := rr.(type) {
	case *dns.A:
		return r.Hdr.Name, r.A.String(), "A", true
	case *dns.AAAA:
		return r.Hdr.Name, r.AAAA.String(), "AAAA", true
	case *dns.SRV:
		return r.Hdr.Name, r.Target + ":" + strconv.Itoa(int(r.Port)), "SRV", true
	}
	return "", "", "", false
}

// navstarRecords lists every A, AAAA and SRV record dcos-net would hold:
// those of the thisdcos.directory zone nz and those of the cluster zone z
// under mesos.thisdcos.directory, sorted.
func navstarRecords(z, nz *zones.Zone) []NavstarRecord {
	out := []NavstarRecord{}
	add := func(rr dns.RR, rename func(string) string) {
		name, host, rtype, ok := recordHost(rr)
		if !ok {
			return
		}
		name = rename(name)
		if rtype == "SRV" {
			target, port, _ := strings.Cut(host, ":")
			host = rename(target) + ":" + port
		}
		out = append(out, NavstarRecord{Name: name, Host: host, Rtype: rtype})
	}
	trim := func(n string) string { return strings.TrimSuffix(n, ".") }
	for _, rr := range nz.Records() {
		add(rr, trim)
	}
	origin := z.Origin()
	for _, rr := range z.Records() {
		add(rr, func(n string) string {
			if dns.IsSubDomain(origin, n) {
				n = n[:len(n)-len(origin)] + NavstarMesos
			}
			return trim(n)
		})
	}
	slices.SortFunc(out, func(a, b NavstarRecord) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Rtype, b.Rtype), strings.Compare(a.Host, b.Host))
	})
	return out
}
