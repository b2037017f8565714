// Package config holds spartan's configuration: one struct, its documented
// defaults, strict JSON decoding and the validation every field goes through
// before anything starts.
package config

// Config is the whole configuration of a spartan process. The zero value is
// not usable: start from Default and decode over it, then call Validate.
type Config struct {
	// Listen lists host:port addresses served on UDP and TCP.
	// Default: ["169.254.20.10:53"]. Empty, with Master set, runs master
	// mode alone, without the node-local proxy (as a drop-in Mesos-DNS).
	Listen []string `json:"listen"`
	// Upstreams is the upstream group for the root zone ("."): the
	// external resolvers. When empty, UpstreamsFile is read instead. An
	// upstream here or in Zones is "IP[:port]" (port 53) for DNS over UDP,
	// or "tls://IP[:port][#name]" (port 853) for DNS over TLS, the
	// certificate checked against name, or against IP without one. The
	// two kinds may be mixed in a group: they race alike.
	Upstreams []string `json:"upstreams"`
	// UpstreamsFile is a resolv.conf-format file whose nameservers form the
	// root group when Upstreams is empty. Default: "/etc/resolv.conf".
	UpstreamsFile string `json:"upstreamsFile"`
	// Zones maps a domain to its own upstream group. The longest matching
	// suffix wins; a query is only ever sent to one group.
	Zones map[string][]string `json:"zones"`
	// ClusterDomain is the cluster's domain. Default: "mesos.". It cannot
	// be empty or the root: its names are never sent to the root group,
	// so when neither Masters nor a Zones entry (the domain itself or one
	// above it) serves it, they are answered SERVFAIL locally.
	ClusterDomain string `json:"clusterDomain"`
	// Masters lists the masters serving ClusterDomain; an address without a
	// port means MasterDNSPort. They form the group of ClusterDomain and
	// of the DC/OS domains (thisdcos.directory, thisdcos.global) unless
	// Zones names that domain explicitly.
	Masters []string `json:"masters"`
	// NodeAddress is this node's own address (an IP, no port), answered
	// by the proxy itself for thisnode.thisdcos.directory (and
	// thisnode.thisdcos.global) as A or AAAA. Default: the source address
	// of the interface that routes to the first of Masters, found at
	// start and on every reload; with no Masters (or no route to the
	// first) the names have no address record (NODATA).
	NodeAddress string `json:"nodeAddress"`
	// TLSCAFile is a PEM file of the certificate authorities that DNS over
	// TLS upstreams (tls://) are verified against. Default: the system
	// roots.
	TLSCAFile string `json:"tlsCAFile"`
	// AllowNets lists the client networks answered; others are refused.
	// Default: loopback, link-local, RFC 1918, RFC 6598 and ULA ranges.
	AllowNets []string `json:"allowNets"`
	// RaceTimeout bounds one upstream race; when it passes with no usable
	// answer the client gets SERVFAIL. Default: "2s".
	RaceTimeout Duration `json:"raceTimeout"`
	// TCPIdleTimeout closes an idle client TCP connection. Default: "10s".
	TCPIdleTimeout Duration `json:"tcpIdleTimeout"`
	// MaxTCPConnections caps open client TCP connections. Default: 1024.
	MaxTCPConnections int `json:"maxTCPConnections"`
	// UDPReceiveBuffer is the receive buffer of each UDP listening socket,
	// in bytes: queries queue in it while the process is briefly busy (a
	// garbage collection, a zone swap) instead of being dropped. Set with
	// SO_RCVBUFFORCE when the process may, otherwise SO_RCVBUF, which the
	// kernel caps at net.core.rmem_max. 0 keeps the system default.
	// Default: 4194304 (4 MiB).
	UDPReceiveBuffer int `json:"udpReceiveBuffer"`
	// ListenerThreads is how many UDP sockets serve each listen address,
	// bound together with SO_REUSEPORT (the kernel spreads clients over
	// them by address and port), each read by its own goroutine, so that
	// cache hits use more than one core. 0 means one per core the Go
	// runtime uses (GOMAXPROCS). A socket passed by the service manager
	// gets siblings only when its unit sets ReusePort=yes. Default: 0.
	ListenerThreads int `json:"listenerThreads"`
	// MaxInFlight caps concurrent upstream races; beyond it queries get
	// SERVFAIL at once instead of queueing. Default: 10000.
	MaxInFlight int `json:"maxInFlight"`
	// ShutdownGrace is how long in-flight queries may take after SIGTERM.
	// Default: "2s".
	ShutdownGrace Duration `json:"shutdownGrace"`
	// Cache configures the response cache.
	Cache Cache `json:"cache"`
	// Metrics is the host:port serving /metrics, /health and /ready; empty
	// turns it off. Default: "127.0.0.1:9153".
	Metrics string `json:"metrics"`
	// Log configures logging.
	Log Log `json:"log"`
	// Master turns master mode on when present.
	Master *Master `json:"master,omitempty"`
}

// Cache configures the response cache.
type Cache struct {
	// Disabled turns the cache off.
	Disabled bool `json:"disabled"`
	// MaxEntries bounds the number of entries. Default: 200000.
	MaxEntries int `json:"maxEntries"`
	// MaxBytes bounds the memory held by entries. Default: 64 MiB.
	MaxBytes int64 `json:"maxBytes"`
	// MinTTL and MaxTTL clamp positive answers. Defaults: "0s", "1h".
	MinTTL Duration `json:"minTTL"`
	MaxTTL Duration `json:"maxTTL"`
	// NegativeMaxTTL clamps NXDOMAIN/NODATA outside the cluster domain.
	// Default: "1h".
	NegativeMaxTTL Duration `json:"negativeMaxTTL"`
	// ClusterNegativeMaxTTL clamps NXDOMAIN/NODATA in the cluster domain so
	// new tasks resolve quickly. Default: "30s".
	ClusterNegativeMaxTTL Duration `json:"clusterNegativeMaxTTL"`
	// NegativeTTL is used for a negative answer without SOA. Default: "5s".
	NegativeTTL Duration `json:"negativeTTL"`
	// ServFailTTL is how long SERVFAIL is cached, at most MaxServFailTTL;
	// "0s" does not cache it. Default: "1s".
	ServFailTTL Duration `json:"servFailTTL"`
	// StaleMaxAge is how long past expiry an entry may be served when every
	// upstream fails (RFC 8767); "0s" disables serve-stale. Default: "24h".
	StaleMaxAge Duration `json:"staleMaxAge"`
	// StaleTTL is the TTL of a stale answer. Default: "30s".
	StaleTTL Duration `json:"staleTTL"`
	// ClientTimeout is how long a client waits for a fresh answer before a
	// stale one is served. Default: "1.8s".
	ClientTimeout Duration `json:"clientTimeout"`
	// PrefetchHits is how many hits make an entry popular enough to be
	// refreshed before it expires; 0 disables prefetch. Default: 10.
	PrefetchHits int `json:"prefetchHits"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default: "info".
	Level string `json:"level"`
	// Format is text or json. Default: "text".
	Format string `json:"format"`
	// Queries logs every query at debug level.
	Queries bool `json:"queries"`
}

// Master configures master mode: the embedded Mesos record generator and the
// authoritative server for the cluster domain.
type Master struct {
	// Listen lists host:port addresses serving the cluster domain
	// authoritatively on UDP and TCP. Default: ["0.0.0.0:61053"]. Empty
	// (with HTTP set) serves no DNS, only the HTTP API.
	Listen []string `json:"listen"`
	// Masters lists the Mesos masters' HTTP endpoints as host:port.
	// Default: ["127.0.0.1:5050"].
	Masters []string `json:"masters"`
	// ZK is the ZooKeeper URL the leading master is found through, in
	// Mesos-DNS syntax: zk://[user:pass@]host:port[,host:port...]/path.
	// When ZooKeeper is unreachable or names no leader, Masters are asked
	// instead. Empty: only Masters are used.
	ZK string `json:"zk"`
	// ZKDetectionTimeout is how long, in seconds, ZooKeeper may go without
	// naming a leader before Masters are used. Default: 30.
	ZKDetectionTimeout int `json:"zkDetectionTimeout"`
	// Domain is the generated zone. Default: ClusterDomain.
	Domain string `json:"domain"`
	// RefreshSeconds is the state poll interval. Default: 30.
	RefreshSeconds int `json:"refreshSeconds"`
	// StateTimeoutSeconds bounds one state fetch. Default: 10.
	StateTimeoutSeconds int `json:"stateTimeoutSeconds"`
	// TTL of generated records in seconds. Default: 60.
	TTL int `json:"ttl"`
	// HTTP is the host:port of the Mesos-DNS style HTTP API; empty turns it
	// off. Default: "127.0.0.1:8123".
	HTTP string `json:"http"`
	// IPSources orders where task addresses come from: netinfo, mesos,
	// docker, host. Default: ["netinfo", "mesos", "host"].
	IPSources []string `json:"IPSources"`
	// EnforceRFC952 makes labels RFC 952 names (24 characters, no leading
	// digit) instead of RFC 1123 ones.
	EnforceRFC952 bool `json:"EnforceRFC952"`
	// HealthyOnly leaves out tasks whose latest status says unhealthy.
	HealthyOnly bool `json:"healthyOnly"`
	// StateFile, when set, is read instead of polling the masters: a fixed
	// state for demos and tests.
	StateFile string `json:"stateFile"`
	// MaxShrink is the largest share of the served zone's records one
	// poll may take away at once, between 0 and 1. A bigger loss is held
	// for one poll and applied only when the next poll, from the same
	// leader, confirms it, or at once when the state itself explains it
	// (the frameworks gone are listed as completed). 1 never holds.
	// Default: 0.5.
	MaxShrink float64 `json:"maxShrink"`
	// AllowNets lists the client networks the authoritative port answers;
	// others get REFUSED. Default: as the proxy's AllowNets (loopback,
	// link-local, RFC 1918, RFC 6598, ULA).
	AllowNets []string `json:"allowNets"`
	// RRL is response rate limiting on the authoritative port's UDP
	// replies.
	RRL RRL `json:"rrl"`
	// SOA fields. Defaults: ns1.<domain>, root.ns1.<domain>, 60, 600,
	// 86400, 60.
	SOAMname   string `json:"SOAMname"`
	SOARname   string `json:"SOARname"`
	SOARefresh uint32 `json:"SOARefresh"`
	SOARetry   uint32 `json:"SOARetry"`
	SOAExpire  uint32 `json:"SOAExpire"`
	SOAMinttl  uint32 `json:"SOAMinttl"`
	// SRVRecordDefaultWeight is the weight of every generated SRV record.
	// Default: 1 (weight 0 means "only when nothing else" to some
	// clients, RFC 2782).
	SRVRecordDefaultWeight uint16 `json:"SRVRecordDefaultWeight"`
	// EnumerationOn serves /v1/enumerate on the HTTP API. Default: true.
	EnumerationOn bool `json:"enumerationOn"`
	// RecursionAvailable sets the RA bit in the zone's replies, as
	// Mesos-DNS's recurseOn does. Default: false (the port does not
	// recurse unless Resolvers are set).
	RecursionAvailable bool `json:"recursionAvailable"`
	// Resolvers, when set, make the authoritative port forward names
	// outside Domain to them, raced as the proxy races a group (Mesos-DNS's
	// externalOn with its resolvers). Empty: such names are REFUSED.
	Resolvers []string `json:"resolvers"`
	// ZoneResolvers maps a domain outside Domain to its own resolvers,
	// used instead of Resolvers for names under it (longest suffix wins).
	// Only with Resolvers.
	ZoneResolvers map[string][]string `json:"zoneResolvers"`
	// ForwardTimeout bounds one forwarded query; when it passes with no
	// usable answer the client gets SERVFAIL. Default: "2s".
	ForwardTimeout Duration `json:"forwardTimeout"`
	// MesosHTTPSOn fetches the Mesos state over HTTPS instead of HTTP.
	MesosHTTPSOn bool `json:"MesosHTTPSOn"`
	// CACertFile is a PEM file of the authorities the masters'
	// certificates are verified against. Default: the system roots.
	CACertFile string `json:"CACertFile"`
	// CertFile and KeyFile are a PEM client certificate and its key
	// presented to the masters; both or neither.
	CertFile string `json:"CertFile"`
	KeyFile  string `json:"KeyFile"`
	// MesosCredentials, when its principal is set, authenticate every
	// request to the masters with HTTP Basic authentication.
	MesosCredentials Credentials `json:"MesosCredentials"`
}

// Credentials are a Mesos principal and its secret.
type Credentials struct {
	Principal string `json:"principal"`
	Secret    string `json:"secret"`
}

// RRL configures response rate limiting on the master's authoritative port,
// after BIND's rate-limit: each client prefix has an account credited
// ResponsesPerSecond every second (up to that much) and debited for every
// UDP reply; while it is negative, replies are dropped except every Slip-th,
// which goes out truncated and empty so a real client retries over TCP.
// TCP is never limited.
type RRL struct {
	// ResponsesPerSecond is each client prefix's limit; 0 turns rate
	// limiting off. Default: 1000.
	ResponsesPerSecond int `json:"responsesPerSecond"`
	// Slip: every Slip-th reply over the limit is sent truncated (TC set,
	// no records) instead of dropped; 0 drops them all, 1 truncates them
	// all. Errors (REFUSED, FORMERR, SERVFAIL) over the limit are always
	// dropped. Default: 2.
	Slip int `json:"slip"`
	// WindowSeconds bounds how far an account can go negative, in seconds
	// of its limit: a client that kept sending over the limit stays
	// limited this long after it slows down. Default: 15.
	WindowSeconds int `json:"windowSeconds"`
	// IPv4PrefixLength and IPv6PrefixLength group clients into accounts.
	// Defaults: 24, 56.
	IPv4PrefixLength int `json:"ipv4PrefixLength"`
	IPv6PrefixLength int `json:"ipv6PrefixLength"`
	// Exempt lists client networks never limited. Default: loopback
	// (the master's own proxy; a loopback source cannot be spoofed from
	// the network).
	Exempt []string `json:"exempt"`
}
