package config

import "time"

// Default ports.
const (
	// DNSPort is the port assumed for an address given without one.
	DNSPort = 53
	// MasterDNSPort is the port the masters serve the cluster domain on and
	// the port assumed for a master given without one.
	MasterDNSPort = 61053
	// MesosPort is the Mesos master's HTTP port.
	MesosPort = 5050
)

// MaxListenerThreads bounds ListenerThreads: more sockets per address
// than cores only split the same work.
const MaxListenerThreads = 256

// Default returns the configuration used for every field a file leaves out.
func Default() Config {
	return Config{
		Listen:            []string{"169.254.20.10:53"},
		UpstreamsFile:     "/etc/resolv.conf",
		ClusterDomain:     "mesos.",
		AllowNets:         DefaultAllowNets(),
		RaceTimeout:       Duration(2 * time.Second),
		TCPIdleTimeout:    Duration(10 * time.Second),
		MaxTCPConnections: 1024,
		UDPReceiveBuffer:  4 << 20,
		MaxInFlight:       10000,
		ShutdownGrace:     Duration(2 * time.Second),
		Cache: Cache{
			MaxEntries:            200000,
			MaxBytes:              64 << 20,
			MaxTTL:                Duration(time.Hour),
			NegativeMaxTTL:        Duration(time.Hour),
			ClusterNegativeMaxTTL: Duration(30 * time.Second),
			NegativeTTL:           Duration(5 * time.Second),
			ServFailTTL:           Duration(time.Second),
			StaleMaxAge:           Duration(24 * time.Hour),
			StaleTTL:              Duration(30 * time.Second),
			ClientTimeout:         Duration(1800 * time.Millisecond),
			PrefetchHits:          10,
		},
		Metrics: "127.0.0.1:9153",
		Log:     Log{Level: "info", Format: "text"},
	}
}

// DefaultMaster returns the master-mode defaults for a cluster domain.
func DefaultMaster() Master {
	return Master{
		Listen:              []string{"0.0.0.0:61053"},
		Masters:             []string{"127.0.0.1:5050"},
		ZKDetectionTimeout:  30,
		RefreshSeconds:      30,
		StateTimeoutSeconds: 10,
		TTL:                 60,
		HTTP:                "127.0.0.1:8123",
		IPSources:           []string{"netinfo", "mesos", "host"},
		MaxShrink:           0.5,
		AllowNets:           DefaultAllowNets(),
		RRL: RRL{
			ResponsesPerSecond: 1000,
			Slip:               2,
			WindowSeconds:      15,
			IPv4PrefixLength:   24,
			IPv6PrefixLength:   56,
			Exempt:             []string{"127.0.0.0/8", "::1/128"},
		},
		SOARefresh:             60,
		SOARetry:               600,
		SOAExpire:              86400,
		SOAMinttl:              60,
		SRVRecordDefaultWeight: 1,
		EnumerationOn:          true,
		ForwardTimeout:         Duration(2 * time.Second),
	}
}

// DefaultAllowNets lists the client networks answered by default: the ones a
// node-local resolver's clients live in, never the whole Internet.
func DefaultAllowNets() []string {
	return []string{
		"127.0.0.0/8", "::1/128", // loopback
		"169.254.0.0/16", "fe80::/10", // link-local
		"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", // RFC 1918
		"100.64.0.0/10", // RFC 6598 (carrier-grade NAT, common in overlays)
		"fc00::/7",      // unique local
	}
}

// The DC/OS domains dcos-net serves besides the cluster domain. Like the
// cluster domain they are the masters' alone: routed to the masters'
// group by default and never sent to the external resolvers.
const (
	// DCOSDirectory is the zone of dcos-net's generated names
	// (<task>.<framework>.autoip.dcos.thisdcos.directory and its siblings).
	DCOSDirectory = "thisdcos.directory."
	// DCOSGlobal is its alias: <x>.thisdcos.global is answered as
	// <x>.thisdcos.directory.
	DCOSGlobal = "thisdcos.global."
)

// ThisNodeNames are the names every node's proxy answers itself with
// Config.NodeAddress, in both DC/OS domains.
var ThisNodeNames = []string{"thisnode." + DCOSDirectory, "thisnode." + DCOSGlobal}

// MasterDomains returns the domains the masters alone serve: the cluster
// domain and the DC/OS domains (each once, for a cluster domain that is
// one of them). Each is routed to Masters unless Zones names it, and is
// answered SERVFAIL, never forwarded to the root group, when no group
// serves it.
func (c *Config) MasterDomains() []string {
	out := []string{c.ClusterDomain}
	for _, d := range []string{DCOSDirectory, DCOSGlobal} {
		if d != c.ClusterDomain {
			out = append(out, d)
		}
	}
	return out
}
