package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// MaxServFailTTL bounds Cache.ServFailTTL: a SERVFAIL is a transient
// failure, and caching it longer would keep clients failing after the
// upstreams have recovered.
const MaxServFailTTL = Duration(time.Second)

// Validate checks every field and normalizes domains to lower-case FQDNs and
// addresses to host:port. It is the one place a configuration is checked.
func (c *Config) Validate() error {
	if len(c.Listen) == 0 && c.Master == nil {
		return fieldErr("listen", "at least one address is required (an empty list runs master mode alone, and needs \"master\")")
	}
	for i, a := range c.Listen {
		hp, err := NormalizeHostPort(a, DNSPort)
		if err != nil {
			return fieldErr(fmt.Sprintf("listen[%d]", i), "%v", err)
		}
		c.Listen[i] = hp
	}
	for i, a := range c.Upstreams {
		hp, err := NormalizeUpstream(a, DNSPort)
		if err != nil {
			return fieldErr(fmt.Sprintf("upstreams[%d]", i), "%v", err)
		}
		c.Upstreams[i] = hp
	}
	if len(c.Upstreams) == 0 && c.UpstreamsFile == "" {
		return fieldErr("upstreams", "empty, and no upstreamsFile to read them from")
	}
	var err error
	if c.ClusterDomain, err = NormalizeDomain(c.ClusterDomain); err != nil {
		return fieldErr("clusterDomain", "%v", err)
	}
	if c.ClusterDomain == "." {
		return fieldErr("clusterDomain", "the root zone cannot be the cluster domain")
	}
	for i, a := range c.Masters {
		if strings.HasPrefix(a, tlsScheme) {
			// Masters are spartan's (or Mesos-DNS's) authoritative
			// servers, which have no TLS listener.
			return fieldErr(fmt.Sprintf("masters[%d]", i), "%q: DNS over TLS is for upstreams and zones; masters serve the cluster zone over UDP and TCP only", a)
		}
		hp, err := NormalizeHostPort(a, MasterDNSPort)
		if err != nil {
			return fieldErr(fmt.Sprintf("masters[%d]", i), "%v", err)
		}
		c.Masters[i] = hp
	}
	if c.NodeAddress != "" {
		a, err := netip.ParseAddr(c.NodeAddress)
		if err != nil || a.Zone() != "" || a.IsUnspecified() {
			return fieldErr("nodeAddress", "not a unicast IP address without zone: %q", c.NodeAddress)
		}
		c.NodeAddress = a.Unmap().String()
	}
	zones := make(map[string][]string, len(c.Zones))
	for name, ups := range c.Zones {
		field := fmt.Sprintf("zones[%q]", name)
		d, err := NormalizeDomain(name)
		if err != nil {
			return fieldErr(field, "%v", err)
		}
		if d == "." {
			return fieldErr(field, `the root group is set with "upstreams"`)
		}
		if _, dup := zones[d]; dup {
			return fieldErr(field, "domain %s listed twice", d)
		}
		if len(ups) == 0 {
			return fieldErr(field, "empty upstream group")
		}
		norm := make([]string, len(ups))
		for i, a := range ups {
			if norm[i], err = NormalizeUpstream(a, DNSPort); err != nil {
				return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%v", err)
			}
		}
		zones[d] = norm
	}
	c.Zones = zones
	if c.TLSCAFile != "" {
		// Read now so a bad file stops the start, not the first query.
		if _, err := c.TLSRoots(); err != nil {
			return err
		}
	}
	if err := validNets("allowNets", c.AllowNets); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{
		{"raceTimeout", c.RaceTimeout},
		{"tcpIdleTimeout", c.TCPIdleTimeout},
		{"shutdownGrace", c.ShutdownGrace},
		{"cache.clientTimeout", c.Cache.ClientTimeout},
	} {
		if d.v <= 0 {
			return fieldErr(d.name, "must be positive, got %s", d.v)
		}
	}
	if c.MaxTCPConnections <= 0 {
		return fieldErr("maxTCPConnections", "must be positive, got %d", c.MaxTCPConnections)
	}
	if c.UDPReceiveBuffer < 0 || c.UDPReceiveBuffer > 1<<30 {
		return fieldErr("udpReceiveBuffer", "must be between 0 (system default) and 1073741824 bytes, got %d", c.UDPReceiveBuffer)
	}
	if c.ListenerThreads < 0 || c.ListenerThreads > MaxListenerThreads {
		return fieldErr("listenerThreads", "must be between 0 (one per core) and %d, got %d", MaxListenerThreads, c.ListenerThreads)
	}
	if c.MaxInFlight <= 0 {
		return fieldErr("maxInFlight", "must be positive, got %d", c.MaxInFlight)
	}
	if err := c.Cache.validate(); err != nil {
		return err
	}
	if c.Metrics != "" {
		if _, _, err := net.SplitHostPort(c.Metrics); err != nil {
			return fieldErr("metrics", "not host:port: %q", c.Metrics)
		}
	}
	if err := c.Log.validate(); err != nil {
		return err
	}
	if c.Master != nil {
		if err := c.Master.validate(c.ClusterDomain); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cache) validate() error {
	if c.Disabled {
		return nil
	}
	if c.MaxEntries <= 0 {
		return fieldErr("cache.maxEntries", "must be positive, got %d", c.MaxEntries)
	}
	if c.MaxBytes <= 0 {
		return fieldErr("cache.maxBytes", "must be positive, got %d", c.MaxBytes)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{
		{"cache.minTTL", c.MinTTL}, {"cache.maxTTL", c.MaxTTL},
		{"cache.negativeMaxTTL", c.NegativeMaxTTL},
		{"cache.clusterNegativeMaxTTL", c.ClusterNegativeMaxTTL},
		{"cache.negativeTTL", c.NegativeTTL}, {"cache.servFailTTL", c.ServFailTTL},
		{"cache.staleMaxAge", c.StaleMaxAge}, {"cache.staleTTL", c.StaleTTL},
	} {
		if d.v < 0 {
			return fieldErr(d.name, "must not be negative, got %s", d.v)
		}
	}
	if c.ServFailTTL > MaxServFailTTL {
		return fieldErr("cache.servFailTTL", "at most %s (SERVFAIL is a transient failure), got %s", MaxServFailTTL, c.ServFailTTL)
	}
	if c.MinTTL > c.MaxTTL {
		return fieldErr("cache.minTTL", "%s is above maxTTL %s", c.MinTTL, c.MaxTTL)
	}
	if c.PrefetchHits < 0 {
		return fieldErr("cache.prefetchHits", "must not be negative, got %d", c.PrefetchHits)
	}
	return nil
}

func (l *Log) validate() error {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		return fieldErr("log.level", "want debug, info, warn or error, got %q", l.Level)
	}
	switch l.Format {
	case "text", "json":
	default:
		return fieldErr("log.format", "want text or json, got %q", l.Format)
	}
	return nil
}

func (m *Master) validate(clusterDomain string) error {
	if len(m.Listen) == 0 && m.HTTP == "" {
		return fieldErr("master.listen", "at least one address is required (or master.http, to serve only the HTTP API)")
	}
	for i, a := range m.Listen {
		hp, err := NormalizeHostPort(a, MasterDNSPort)
		if err != nil {
			return fieldErr(fmt.Sprintf("master.listen[%d]", i), "%v", err)
		}
		m.Listen[i] = hp
	}
	if m.ZK != "" {
		if _, err := ParseZKURL(m.ZK); err != nil {
			return fieldErr("master.zk", "%v", err)
		}
	}
	if m.ZKDetectionTimeout < 0 || m.ZKDetectionTimeout > 86400 {
		return fieldErr("master.zkDetectionTimeout", "must be between 0 (fall back to master.masters at once) and 86400 seconds, got %d", m.ZKDetectionTimeout)
	}
	// As in Mesos-DNS, a ZooKeeper URL alone is enough to find the leader.
	if m.StateFile == "" && m.ZK == "" && len(m.Masters) == 0 {
		return fieldErr("master.masters", "at least one Mesos master (or master.zk) is required")
	}
	for i, a := range m.Masters {
		hp, err := NormalizeHostPort(a, MesosPort)
		if err != nil {
			return fieldErr(fmt.Sprintf("master.masters[%d]", i), "%v", err)
		}
		m.Masters[i] = hp
	}
	if m.Domain == "" {
		m.Domain = clusterDomain
	}
	var err error
	if m.Domain, err = NormalizeDomain(m.Domain); err != nil {
		return fieldErr("master.domain", "%v", err)
	}
	if m.Domain == "." {
		return fieldErr("master.domain", "the root zone cannot be generated")
	}
	if m.RefreshSeconds <= 0 {
		return fieldErr("master.refreshSeconds", "must be positive, got %d", m.RefreshSeconds)
	}
	if m.StateTimeoutSeconds <= 0 {
		return fieldErr("master.stateTimeoutSeconds", "must be positive, got %d", m.StateTimeoutSeconds)
	}
	if m.TTL < 0 {
		return fieldErr("master.ttl", "must not be negative, got %d", m.TTL)
	}
	if m.HTTP != "" {
		if _, _, err := net.SplitHostPort(m.HTTP); err != nil {
			return fieldErr("master.http", "not host:port: %q", m.HTTP)
		}
	}
	if len(m.IPSources) == 0 {
		return fieldErr("master.IPSources", "at least one source is required")
	}
	for i, s := range m.IPSources {
		switch s {
		case "netinfo", "mesos", "docker", "host":
		default:
			return fieldErr(fmt.Sprintf("master.IPSources[%d]", i), "want netinfo, mesos, docker or host, got %q", s)
		}
	}
	if !(m.MaxShrink >= 0 && m.MaxShrink <= 1) {
		return fieldErr("master.maxShrink", "must be between 0 and 1 (a share of the zone's records), got %v", m.MaxShrink)
	}
	if err := validNets("master.allowNets", m.AllowNets); err != nil {
		return err
	}
	if err := m.RRL.validate(); err != nil {
		return err
	}
	if err := m.validateForwarding(); err != nil {
		return err
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		return fieldErr("master.CertFile", "a client certificate needs both CertFile and KeyFile")
	}
	if m.MesosCredentials.Principal == "" && m.MesosCredentials.Secret != "" {
		return fieldErr("master.MesosCredentials.principal", "a secret without a principal")
	}
	if m.SOAMname == "" {
		m.SOAMname = "ns1." + m.Domain
	}
	if m.SOARname == "" {
		m.SOARname = "root." + m.SOAMname
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"master.SOAMname", &m.SOAMname}, {"master.SOARname", &m.SOARname}} {
		d, err := NormalizeDomain(*f.v)
		if err != nil {
			return fieldErr(f.name, "%v", err)
		}
		*f.v = d
	}
	return nil
}

// validateForwarding checks the resolvers names outside the zone are
// forwarded to: addresses with port 53 by default, zone resolvers only
// beside a root group and only for domains outside the zone.
func (m *Master) validateForwarding() error {
	for i, a := range m.Resolvers {
		hp, err := NormalizeHostPort(a, DNSPort)
		if err != nil {
			return fieldErr(fmt.Sprintf("master.resolvers[%d]", i), "%v", err)
		}
		m.Resolvers[i] = hp
	}
	if len(m.ZoneResolvers) > 0 && len(m.Resolvers) == 0 {
		return fieldErr("master.zoneResolvers", "needs master.resolvers for the names outside its zones")
	}
	zones := make(map[string][]string, len(m.ZoneResolvers))
	for name, ups := range m.ZoneResolvers {
		field := fmt.Sprintf("master.zoneResolvers[%q]", name)
		d, err := NormalizeDomain(name)
		if err != nil {
			return fieldErr(field, "%v", err)
		}
		if d == "." {
			return fieldErr(field, `the root group is set with "resolvers"`)
		}
		if dns.IsSubDomain(m.Domain, d) {
			return fieldErr(field, "inside the generated zone %s", m.Domain)
		}
		if _, dup := zones[d]; dup {
			return fieldErr(field, "domain %s listed twice", d)
		}
		if len(ups) == 0 {
			return fieldErr(field, "empty resolver group")
		}
		norm := make([]string, len(ups))
		for i, a := range ups {
			if norm[i], err = NormalizeHostPort(a, DNSPort); err != nil {
				return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%v", err)
			}
		}
		zones[d] = norm
	}
	if m.ZoneResolvers != nil {
		m.ZoneResolvers = zones
	}
	if m.ForwardTimeout <= 0 {
		return fieldErr("master.forwardTimeout", "must be positive, got %s", m.ForwardTimeout)
	}
	return nil
}

func (r *RRL) validate() error {
	// The ranges are BIND's (rate-limit in named.conf).
	for _, f := range []struct {
		name   string
		v      int
		lo, hi int
	}{
		{"master.rrl.responsesPerSecond", r.ResponsesPerSecond, 0, 1000000},
		{"master.rrl.slip", r.Slip, 0, 10},
		{"master.rrl.windowSeconds", r.WindowSeconds, 1, 3600},
		{"master.rrl.ipv4PrefixLength", r.IPv4PrefixLength, 0, 32},
		{"master.rrl.ipv6PrefixLength", r.IPv6PrefixLength, 0, 128},
	} {
		if f.v < f.lo || f.v > f.hi {
			return fieldErr(f.name, "must be between %d and %d, got %d", f.lo, f.hi, f.v)
		}
	}
	return validNets("master.rrl.exempt", r.Exempt)
}

// validNets checks that every entry of a network list is a CIDR prefix.
func validNets(field string, nets []string) error {
	for i, n := range nets {
		if _, err := netip.ParsePrefix(n); err != nil {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "not a CIDR prefix: %q", n)
		}
	}
	return nil
}
