// Package config holds spartan's configuration: one struct, its documented
// defaults, strict JSON decoding and the validation every field goes through
// before anything starts.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

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

// Config is the whole configuration of a spartan process. The zero value is
// not usable: start from Default and decode over it, then call Validate.
type Config struct {
	// Listen lists host:port addresses served on UDP and TCP.
	// Default: ["169.254.20.10:53"].
	Listen []string `json:"listen"`
	// Upstreams is the upstream group for the root zone ("."): the
	// external resolvers. When empty, UpstreamsFile is read instead.
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
	// port means MasterDNSPort. They form the ClusterDomain group unless
	// Zones names that domain explicitly.
	Masters []string `json:"masters"`
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
	// authoritatively on UDP and TCP. Default: ["0.0.0.0:61053"].
	Listen []string `json:"listen"`
	// Masters lists the Mesos masters' HTTP endpoints as host:port.
	// Default: ["127.0.0.1:5050"].
	Masters []string `json:"masters"`
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
	// SOA fields. Defaults: ns1.<domain>, root.ns1.<domain>, 60, 600,
	// 86400, 60.
	SOAMname   string `json:"SOAMname"`
	SOARname   string `json:"SOARname"`
	SOARefresh uint32 `json:"SOARefresh"`
	SOARetry   uint32 `json:"SOARetry"`
	SOAExpire  uint32 `json:"SOAExpire"`
	SOAMinttl  uint32 `json:"SOAMinttl"`
}

// MaxServFailTTL bounds Cache.ServFailTTL: a SERVFAIL is a transient
// failure, and caching it longer would keep clients failing after the
// upstreams have recovered.
const MaxServFailTTL = Duration(time.Second)

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
		RefreshSeconds:      30,
		StateTimeoutSeconds: 10,
		TTL:                 60,
		HTTP:                "127.0.0.1:8123",
		IPSources:           []string{"netinfo", "mesos", "host"},
		SOARefresh:          60,
		SOARetry:            600,
		SOAExpire:           86400,
		SOAMinttl:           60,
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

// Load reads, decodes and validates the file at path. Errors name the file,
// the field and the reason.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes data over the defaults, strictly (unknown fields are errors),
// and validates the result.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	if err := DecodeStrict(data, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// DecodeStrict decodes one JSON object from data into v, which holds the
// defaults: unknown fields, wrong types and trailing data are errors, and a
// field's error is a *FieldError naming it. Other configuration files (the
// watchdog's) use it too, so every file fails the same way.
func DecodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var fieldErr *FieldError
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &fieldErr):
			return fieldErr
		case errors.As(err, &typeErr) && typeErr.Type == durationType:
			return &FieldError{Field: typeErr.Field, Reason: fmt.Sprintf("not a duration: %s (want e.g. \"2s\", \"500ms\" or a number of seconds)", typeErr.Value)}
		case errors.As(err, &typeErr):
			return &FieldError{Field: typeErr.Field, Reason: fmt.Sprintf("expected %s, got JSON %s", typeErr.Type, typeErr.Value)}
		case errors.As(err, &syntaxErr):
			return fmt.Errorf("invalid JSON at byte %d: %w", syntaxErr.Offset, err)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			return &FieldError{Field: name, Reason: "unknown field"}
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON: trailing data after the configuration object")
	}
	return nil
}

// UnmarshalJSON decodes a master object over DefaultMaster, strictly, so a
// partial object keeps the defaults for the fields it leaves out.
func (m *Master) UnmarshalJSON(b []byte) error {
	type plain Master // without this method, to avoid recursion
	p := plain(DefaultMaster())
	if err := DecodeStrict(b, &p); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return &FieldError{Field: "master." + fe.Field, Reason: fe.Reason}
		}
		return fmt.Errorf("master: %w", err)
	}
	*m = Master(p)
	return nil
}

// FieldError says which field of a configuration is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %s: %s", e.Field, e.Reason) }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks every field and normalizes domains to lower-case FQDNs and
// addresses to host:port. It is the one place a configuration is checked.
func (c *Config) Validate() error {
	if len(c.Listen) == 0 {
		return fieldErr("listen", "at least one address is required")
	}
	for i, a := range c.Listen {
		hp, err := NormalizeHostPort(a, DNSPort)
		if err != nil {
			return fieldErr(fmt.Sprintf("listen[%d]", i), "%v", err)
		}
		c.Listen[i] = hp
	}
	for i, a := range c.Upstreams {
		hp, err := NormalizeHostPort(a, DNSPort)
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
		hp, err := NormalizeHostPort(a, MasterDNSPort)
		if err != nil {
			return fieldErr(fmt.Sprintf("masters[%d]", i), "%v", err)
		}
		c.Masters[i] = hp
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
			if norm[i], err = NormalizeHostPort(a, DNSPort); err != nil {
				return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%v", err)
			}
		}
		zones[d] = norm
	}
	c.Zones = zones
	for i, n := range c.AllowNets {
		if _, err := netip.ParsePrefix(n); err != nil {
			return fieldErr(fmt.Sprintf("allowNets[%d]", i), "not a CIDR prefix: %q", n)
		}
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
	if len(m.Listen) == 0 {
		return fieldErr("master.listen", "at least one address is required")
	}
	for i, a := range m.Listen {
		hp, err := NormalizeHostPort(a, MasterDNSPort)
		if err != nil {
			return fieldErr(fmt.Sprintf("master.listen[%d]", i), "%v", err)
		}
		m.Listen[i] = hp
	}
	if m.StateFile == "" && len(m.Masters) == 0 {
		return fieldErr("master.masters", "at least one Mesos master is required")
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

// NormalizeDomain returns name as a lower-case fully qualified domain name.
func NormalizeDomain(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty domain name")
	}
	fqdn := dns.Fqdn(strings.ToLower(name))
	if _, ok := dns.IsDomainName(fqdn); !ok {
		return "", fmt.Errorf("not a domain name: %q", name)
	}
	return fqdn, nil
}

// NormalizeHostPort parses an IP address with an optional port ("192.0.2.1",
// "192.0.2.1:53", "[2001:db8::1]:53", "2001:db8::1") and returns it as
// host:port, using defaultPort when none is given. Host names are rejected:
// a resolver must not depend on resolution to find its upstreams.
func NormalizeHostPort(s string, defaultPort int) (string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return "", fmt.Errorf("port 0 in %q", s)
		}
		return ap.String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, uint16(defaultPort)).String(), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("not an IP address or IP:port: %q", s)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "", fmt.Errorf("not an IP address: %q in %q", host, s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return "", fmt.Errorf("bad port %q in %q", port, s)
	}
	return "", fmt.Errorf("not an IP:port: %q", s)
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("1.5s", "30m"); a bare number means seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

var durationType = reflect.TypeOf(Duration(0))

// UnmarshalJSON accepts a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	// A *json.UnmarshalTypeError gets the field's path filled in by the
	// decoder, so the message can name it.
	bad := &json.UnmarshalTypeError{Value: string(b), Type: durationType}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return bad
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return bad
	}
	*d = Duration(f * float64(time.Second))
	return nil
}
