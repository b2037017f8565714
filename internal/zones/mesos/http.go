package mesos

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"
	"github.com/spartan-dns/spartan/internal/config"
)

// Version is reported by /v1/version.
var Version = "dev"

// The JSON shapes of Mesos-DNS's HTTP API (docs/http.md).
type (
	versionInfo struct {
		Service string `json:"Service"`
		URL     string `json:"URL"`
		Version string `json:"Version"`
	}
	hostRecord struct {
		Host string `json:"host"`
		IP   string `json:"ip"`
	}
	serviceRecord struct {
		Service string `json:"service"`
		Host    string `json:"host"`
		IP      string `json:"ip"`
		Port    string `json:"port"`
	}
	// EnumerationData is /v1/enumerate: every framework and its tasks'
	// records.
	EnumerationData struct {
		Frameworks []*EnumerableFramework `json:"frameworks"`
	}
	// EnumerableFramework is a framework in /v1/enumerate.
	EnumerableFramework struct {
		Tasks []*EnumerableTask `json:"tasks"`
		Name  string            `json:"name"`
	}
	// EnumerableTask is a task and the records generated for it.
	EnumerableTask struct {
		Name    string             `json:"name"`
		ID      string             `json:"id"`
		Records []EnumerableRecord `json:"records"`
	}
	// EnumerableRecord is one record: host is an address, or target:port
	// for SRV.
	EnumerableRecord struct {
		Name  string `json:"name"`
		Host  string `json:"host"`
		Rtype string `json:"rtype"`
	}
)

// mesosDNSConfig fills /v1/config, Mesos-DNS's records.Config as
// Mesos-DNS marshals it (Go field names, three of them with JSON tags),
// field for field, so clients that read it keep working. Fields without a
// counterpart say what master mode does: ExternalOn is whether names
// outside the zone are forwarded (master.resolvers), Timeout the forward
// timeout in whole seconds, SetTruncateBit true (a reply too large for
// UDP is always truncated); no authentication secret is shown. Zk is
// master.zk with its password hidden (Mesos-DNS shows it as configured).
// Listener and Port are the first listen address; the domain is written
// without the final dot, as Mesos-DNS writes it.
func (m *Master) mesosDNSConfig() config.MesosDNS {
	c := config.MesosDNS{
		RefreshSeconds:         m.cfg.RefreshSeconds,
		SRVRecordDefaultWeight: m.cfg.SRVRecordDefaultWeight,
		ZoneResolvers:          nonNilMap(m.cfg.ZoneResolvers),
		SetTruncateBit:         true,
		CertFile:               m.cfg.CertFile,
		KeyFile:                m.cfg.KeyFile,
		Timeout:                int(m.cfg.ForwardTimeout.D().Seconds()),
		StateTimeoutSeconds:    m.cfg.StateTimeoutSeconds,
		ZkDetectionTimeout:     m.cfg.ZKDetectionTimeout,
		Zk:                     m.zkURL(),
		TTL:                    int32(m.cfg.TTL),
		SOASerial:              m.store.Load().Serial(),
		SOARefresh:             m.cfg.SOARefresh,
		SOARetry:               m.cfg.SOARetry,
		SOAExpire:              m.cfg.SOAExpire,
		SOAMinttl:              m.cfg.SOAMinttl,
		SOAMname:               m.cfg.SOAMname,
		SOARname:               m.cfg.SOARname,
		Masters:                nonNil(m.cfg.Masters),
		Resolvers:              nonNil(m.cfg.Resolvers),
		IPSources:              nonNil(m.cfg.IPSources),
		Domain:                 strings.TrimSuffix(m.cfg.Domain, "."),
		RecurseOn:              m.cfg.RecursionAvailable,
		DNSOn:                  len(m.cfg.Listen) > 0,
		HTTPOn:                 m.cfg.HTTP != "",
		ExternalOn:             len(m.cfg.Resolvers) > 0,
		EnforceRFC952:          m.cfg.EnforceRFC952,
		EnumerationOn:          m.cfg.EnumerationOn,
		MesosHTTPSOn:           m.cfg.MesosHTTPSOn,
		CACertFile:             m.cfg.CACertFile,
	}
	c.MesosCredentials.Principal = m.cfg.MesosCredentials.Principal
	if c.MesosCredentials.Principal != "" {
		c.MesosAuthentication = "basic"
	}
	if len(m.cfg.Listen) > 0 {
		c.Listener, c.Port = splitHostPort(m.cfg.Listen[0])
	}
	if m.cfg.HTTP != "" {
		c.HTTPListener, c.HTTPPort = splitHostPort(m.cfg.HTTP)
	}
	return c
}

// splitHostPort splits a validated host:port; a part it cannot read is
// left zero.
func splitHostPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// nonNilMap is nonNil for ZoneResolvers, {} rather than null.
func nonNilMap(m map[string][]string) map[string][]string {
	if m == nil {
		return map[string][]string{}
	}
	return m
}

// Handler serves the Mesos-DNS style HTTP API: /v1/version, /v1/config,
// /v1/hosts/{host}, /v1/hosts/{host}/ports, /v1/services/{service},
// /v1/enumerate and /v1/axfr, and dcos-net's /v1/records.
func (m *Master) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, versionInfo{Service: "spartan", URL: "https://github.com/spartan-dns/spartan", Version: Version})
	})
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, m.mesosDNSConfig())
	})
	mux.HandleFunc("GET /v1/hosts/{host}", m.hosts)
	mux.HandleFunc("GET /v1/services/{service}", m.services)
	if m.cfg.EnumerationOn {
		// Only with enumerationOn, as Mesos-DNS's configureHTTP.
		mux.HandleFunc("GET /v1/enumerate", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(m.enumerateJSON())
		})
	}
	m.navstarRoutes(mux)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = encodeJSON(w, v)
}

func encodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// apiName makes a path parameter a lower-case FQDN.
func apiName(s string) string { return dns.Fqdn(strings.ToLower(s)) }

// hosts answers like an A and AAAA lookup. As in Mesos-DNS, a name without
// addresses gives one empty element rather than an empty list.
func (m *Master) hosts(w http.ResponseWriter, r *http.Request) {
	name := apiName(r.PathValue("host"))
	z := m.store.Load()
	out := []hostRecord{}
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		for _, rr := range z.Lookup(name, t).Answer {
			if ip, ok := rrAddr(rr); ok {
				out = append(out, hostRecord{Host: name, IP: ip.String()})
			}
		}
	}
	if len(out) == 0 {
		out = append(out, hostRecord{})
	}
	writeJSON(w, out)
}

// services answers like an SRV lookup, one element per target address. As
// in Mesos-DNS, nothing found gives one empty element.
func (m *Master) services(w http.ResponseWriter, r *http.Request) {
	name := apiName(r.PathValue("service"))
	z := m.store.Load()
	out := []serviceRecord{}
	for _, rr := range z.Lookup(name, dns.TypeSRV).Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok {
			continue
		}
		port := strconv.Itoa(int(srv.Port))
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			for _, a := range z.Lookup(srv.Target, t).Answer {
				if ip, ok := rrAddr(a); ok {
					out = append(out, serviceRecord{Service: name, Host: srv.Target, IP: ip.String(), Port: port})
				}
			}
		}
	}
	if len(out) == 0 {
		out = append(out, serviceRecord{})
	}
	writeJSON(w, out)
}

func rrAddr(rr dns.RR) (netip.Addr, bool) {
	switch r := rr.(type) {
	case *dns.A:
		return netip.AddrFromSlice(r.A.To4())
	case *dns.AAAA:
		return netip.AddrFromSlice(r.AAAA)
	}
	return netip.Addr{}, false
}

// Enumerate lists every framework and the records of its tasks, for the
// state behind the zone being served. It regenerates them on every call
// rather than keeping a second copy of every record; /v1/enumerate serves
// an encoding cached per zone instead.
func (m *Master) Enumerate() EnumerationData {
	m.mu.Lock()
	e := m.enum
	m.mu.Unlock()
	var st *State
	if e != nil {
		st = e.st
	}
	return m.enumerate(st)
}

func (m *Master) enumerate(st *State) EnumerationData {
	m.enumBuilds.Add(1)
	es := &enumSink{data: EnumerationData{Frameworks: []*EnumerableFramework{}}}
	if st != nil {
		// Host names are not resolved again: agents are named by IP
		// in practice, and a slow resolver must not stall the API.
		opt := m.opt
		opt.Masters = m.recordMasters()
		generate(st, &opt, es)
	}
	return es.data
}

// enumCache is the enumeration of one served zone, encoded once, on the
// first request after the zone was swapped in: at 100,000 tasks making it
// costs about a second of CPU.
type enumCache struct {
	st   *State
	once sync.Once
	body []byte
}

// enumerateJSON returns /v1/enumerate's body for the zone being served.
func (m *Master) enumerateJSON() []byte {
	m.mu.Lock()
	e := m.enum
	m.mu.Unlock()
	if e == nil {
		var b bytes.Buffer
		_ = encodeJSON(&b, m.enumerate(nil))
		return b.Bytes()
	}
	e.once.Do(func() {
		var b bytes.Buffer
		_ = encodeJSON(&b, m.enumerate(e.st))
		e.body = b.Bytes()
	})
	return e.body
}

type enumSink struct {
	data EnumerationData
	fw   *EnumerableFramework
	cur  *EnumerableTask
	seen map[EnumerableRecord]bool
}

func (e *enumSink) framework(fw *Framework) {
	e.fw = &EnumerableFramework{Name: fw.Name, Tasks: []*EnumerableTask{}}
	e.data.Frameworks = append(e.data.Frameworks, e.fw)
	e.cur = nil
}

func (e *enumSink) task(t *Task) {
	e.cur = &EnumerableTask{Name: t.Name, ID: t.ID, Records: []EnumerableRecord{}}
	e.fw.Tasks = append(e.fw.Tasks, e.cur)
	if e.seen == nil {
		// One set for the whole enumeration: a record two tasks share
		// is listed under the first only, as Mesos-DNS's insertTaskRR
		// lists a record only when it adds it to the zone.
		e.seen = map[EnumerableRecord]bool{}
	}
}

func (e *enumSink) add(r EnumerableRecord) {
	if e.cur == nil || e.seen[r] {
		return
	}
	e.seen[r] = true
	e.cur.Records = append(e.cur.Records, r)
}

func (e *enumSink) addr(name string, ip netip.Addr) {
	t := "A"
	if !ip.Is4() {
		t = "AAAA"
	}
	e.add(EnumerableRecord{Name: name, Host: ip.String(), Rtype: t})
}

func (e *enumSink) srv(name, target string, port uint16) {
	e.add(EnumerableRecord{Name: name, Host: target + ":" + strconv.Itoa(int(port)), Rtype: "SRV"})
}
