package config

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/miekg/dns"
)

// MesosDNS is Mesos-DNS's records.Config (records/config.go in
// mesosphere/mesos-dns): Go field names, three with JSON tags. Mesos-DNS
// decodes its config.json into it with encoding/json, which matches names
// in any case, ignores unknown fields, leaves a field given null untouched
// and takes the last of a field given twice: decoding into the same shape
// with the same decoder gives exactly the values Mesos-DNS would see. It
// also marshals it, as is, for its /v1/config API, which master mode
// serves in the same shape.
type MesosDNS struct {
	RefreshSeconds         int
	Port                   int
	Timeout                int
	StateTimeoutSeconds    int
	ZkDetectionTimeout     int
	HTTPPort               int `json:"HttpPort"`
	TTL                    int32
	SRVRecordDefaultWeight uint16
	SOASerial              uint32
	SOARefresh             uint32
	SOARetry               uint32
	SOAExpire              uint32
	SOAMinttl              uint32
	SOAMname               string
	SOARname               string
	Masters                []string
	ZoneResolvers          map[string][]string
	Resolvers              []string
	IPSources              []string
	Zk                     string
	Domain                 string
	File                   string
	Listener               string
	HTTPListener           string
	RecurseOn              bool
	DNSOn                  bool `json:"DnsOn"`
	HTTPOn                 bool `json:"HttpOn"`
	ExternalOn             bool
	EnforceRFC952          bool
	SetTruncateBit         bool
	EnumerationOn          bool
	MesosHTTPSOn           bool
	CACertFile             string
	CertFile               string
	KeyFile                string
	MesosCredentials       struct{ Principal, Secret string }
	IAMConfigFile          string
	MesosAuthentication    string
}

// newMesosDNSFile returns Mesos-DNS's defaults (records.NewConfig).
func newMesosDNSFile() MesosDNS {
	return MesosDNS{
		ZkDetectionTimeout:     30,
		RefreshSeconds:         60,
		TTL:                    60,
		SRVRecordDefaultWeight: 1,
		Domain:                 "mesos",
		Port:                   53,
		Timeout:                5,
		StateTimeoutSeconds:    300,
		SOARname:               "root.ns1.mesos",
		SOAMname:               "ns1.mesos",
		SOARefresh:             60,
		SOARetry:               600,
		SOAExpire:              86400,
		SOAMinttl:              60,
		ZoneResolvers:          map[string][]string{},
		Resolvers:              []string{"8.8.8.8"},
		Listener:               "0.0.0.0",
		HTTPListener:           "0.0.0.0",
		HTTPPort:               8123,
		DNSOn:                  true,
		HTTPOn:                 true,
		ExternalOn:             true,
		SetTruncateBit:         true,
		RecurseOn:              true,
		IPSources:              []string{"netinfo", "mesos", "host"},
		EnumerationOn:          true,
	}
}

// mesosDNSEmail is the SOA rname field of Mesos-DNS before its SOA*
// fields existed ("email", replaced by SOARname in its commit c090a51).
// Current Mesos-DNS ignores it; a file that still has it meant it as the
// rname, so it is used when SOARname is absent.
type mesosDNSEmail struct {
	Email    *string
	SOARname *string
}

// MesosDNSOptions adjust how a Mesos-DNS file is read.
type MesosDNSOptions struct {
	// ResolvConf is the file whose nameservers are the resolvers when the
	// file turns externalOn on with an empty resolver list, as Mesos-DNS
	// reads /etc/resolv.conf then. Default: "/etc/resolv.conf".
	ResolvConf string
	// LocalAddrs are the host's addresses, left out of those nameservers
	// (Mesos-DNS would forward to itself). Default: the interfaces'.
	LocalAddrs []netip.Addr
}

// MesosDNSResult is a Mesos-DNS file mapped to spartan's configuration.
type MesosDNSResult struct {
	Config Config
	// Ignored lists the file's fields Mesos-DNS itself ignores (unknown
	// to it) or that change nothing here, each with the reason, for the
	// log: they are no error, as they were none to Mesos-DNS.
	Ignored []string
}

// mesosDNSDomain is Mesos-DNS's check of the domain (validateDomainName).
var mesosDNSDomain = regexp.MustCompile(`^[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$`)

// LoadMesosDNS reads a Mesos-DNS config.json and maps it (MapMesosDNS).
// Errors name the file, the Mesos-DNS field and the reason.
func LoadMesosDNS(path string, o MesosDNSOptions) (MesosDNSResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return MesosDNSResult{}, fmt.Errorf("mesos-dns config: %w", err)
	}
	r, err := MapMesosDNS(data, o)
	if err != nil {
		return MesosDNSResult{}, fmt.Errorf("mesos-dns config %s: %w", path, err)
	}
	return r, nil
}

// MapMesosDNS decodes a Mesos-DNS config.json as Mesos-DNS does and
// returns the spartan configuration that answers the same questions the
// same way on the same ports: master mode alone (no node-local proxy, no
// metrics port), serving domain on listener:port when dnsOn, the HTTP API
// on httpListener:httpPort when httpOn, names outside the domain forwarded
// to the resolvers when externalOn and REFUSED otherwise. What Mesos-DNS
// refuses at start is an error here too, and so is what spartan cannot do
// (IAM authentication, host names where spartan needs addresses, turning
// off the TC bit); the error's field is the file's.
func MapMesosDNS(data []byte, o MesosDNSOptions) (MesosDNSResult, error) {
	f := newMesosDNSFile()
	if err := stdjson.Unmarshal(data, &f); err != nil {
		return MesosDNSResult{}, mesosDNSDecodeError(err)
	}
	var email mesosDNSEmail
	_ = stdjson.Unmarshal(data, &email) // it decoded above: no error here
	res := MesosDNSResult{Ignored: mesosDNSUnknown(data)}
	cfg, err := f.toSpartan(email, o, &res)
	if err != nil {
		return MesosDNSResult{}, err
	}
	if err := cfg.Validate(); err != nil {
		return MesosDNSResult{}, fmt.Errorf("as spartan configuration: %w", err)
	}
	res.Config = cfg
	return res, nil
}

// mesosDNSDecodeError names the field of a decoding error.
func mesosDNSDecodeError(err error) error {
	var te *stdjson.UnmarshalTypeError
	var se *stdjson.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return &FieldError{Field: te.Field, Reason: fmt.Sprintf("expected %s, got JSON %s", te.Type, te.Value)}
	case errors.As(err, &te):
		return fmt.Errorf("invalid JSON: the configuration must be an object, got JSON %s", te.Value)
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at byte %d: %w", se.Offset, err)
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// mesosDNSUnknown lists the top-level members of data no field of
// Mesos-DNS's configuration takes (matched in any case, as encoding/json
// does), and "email" when SOARname overrides it.
func mesosDNSUnknown(data []byte) []string {
	var members map[string]stdjson.RawMessage
	if stdjson.Unmarshal(data, &members) != nil {
		return nil
	}
	known := mesosDNSFieldNames()
	var out []string
	for name := range members {
		switch {
		case strings.EqualFold(name, "email"):
			if _, ok := lookupFold(members, "SOARname"); ok {
				out = append(out, name+": SOARname is set, which Mesos-DNS uses instead")
			}
		case strings.EqualFold(name, "File"), strings.EqualFold(name, "SOASerial"):
			out = append(out, name+": set by Mesos-DNS itself at start, whatever the file says")
		case !slices.ContainsFunc(known, func(k string) bool { return strings.EqualFold(k, name) }):
			out = append(out, name+": unknown to Mesos-DNS, which ignores it")
		}
	}
	slices.Sort(out)
	return out
}

func lookupFold(m map[string]stdjson.RawMessage, name string) (stdjson.RawMessage, bool) {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// mesosDNSFieldNames are the JSON names of Mesos-DNS's fields: the tag,
// else the Go name.
func mesosDNSFieldNames() []string {
	t := reflect.TypeOf(MesosDNS{})
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// toSpartan maps the decoded file, after Mesos-DNS's own start-up checks
// (records.SetConfig), to spartan's configuration.
func (f *MesosDNS) toSpartan(email mesosDNSEmail, o MesosDNSOptions, res *MesosDNSResult) (Config, error) {
	// Mesos-DNS's checks, in its order.
	if !f.DNSOn && !f.HTTPOn {
		return Config{}, &FieldError{Field: "dnsOn", Reason: "either DNS (dnsOn) or HTTP (httpOn) must be on"}
	}
	if len(f.Masters) == 0 && f.Zk == "" {
		return Config{}, &FieldError{Field: "masters", Reason: "specify Mesos masters or ZooKeeper (zk)"}
	}
	m := DefaultMaster()
	m.Masters = nil
	seen := map[string]bool{}
	for i, s := range f.Masters {
		field := fmt.Sprintf("masters[%d]", i)
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return Config{}, &FieldError{Field: field, Reason: fmt.Sprintf("not host:port: %q", s)}
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return Config{}, &FieldError{Field: field, Reason: fmt.Sprintf("bad port in %q", s)}
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return Config{}, &FieldError{Field: field, Reason: fmt.Sprintf("%q is a host name; spartan needs the master's IP address (it does not resolve its own masters)", host)}
		}
		hp := net.JoinHostPort(ip.String(), port)
		if seen[hp] {
			return Config{}, &FieldError{Field: field, Reason: fmt.Sprintf("duplicate master %s", s)}
		}
		seen[hp] = true
		m.Masters = append(m.Masters, hp)
	}
	m.ZK = f.Zk
	m.ZKDetectionTimeout = f.ZkDetectionTimeout
	if f.ExternalOn {
		rs := f.Resolvers
		if len(rs) == 0 {
			// Mesos-DNS's GetLocalDNS: resolv.conf's nameservers
			// but the host's own addresses.
			var err error
			if rs, err = localResolvers(o); err != nil {
				return Config{}, &FieldError{Field: "resolvers", Reason: fmt.Sprintf("empty, and %v", err)}
			}
		}
		var err error
		if m.Resolvers, err = mesosDNSResolvers("resolvers", rs); err != nil {
			return Config{}, err
		}
		if len(f.ZoneResolvers) > 0 {
			m.ZoneResolvers = make(map[string][]string, len(f.ZoneResolvers))
		}
		for zone, rs := range f.ZoneResolvers {
			field := fmt.Sprintf("zoneResolvers[%q]", zone)
			if len(rs) == 0 {
				return Config{}, &FieldError{Field: field, Reason: "empty resolver list"}
			}
			if !mesosDNSDomain.MatchString(zone) {
				return Config{}, &FieldError{Field: field, Reason: fmt.Sprintf("not a domain name: %q", zone)}
			}
			if m.ZoneResolvers[zone], err = mesosDNSResolvers(field, rs); err != nil {
				return Config{}, err
			}
		}
		if err := mesosDNSZonesUnambiguous(f.ZoneResolvers, strings.ToLower(f.Domain)); err != nil {
			return Config{}, err
		}
	} else if len(f.ZoneResolvers) > 0 {
		res.Ignored = append(res.Ignored, "zoneResolvers: externalOn is false, so Mesos-DNS forwards nothing")
	}
	if err := validIPSources(f.IPSources); err != nil {
		return Config{}, err
	}
	m.IPSources = f.IPSources
	if f.StateTimeoutSeconds <= 0 {
		return Config{}, &FieldError{Field: "stateTimeoutSeconds", Reason: fmt.Sprintf("must be positive, got %d", f.StateTimeoutSeconds)}
	}
	m.StateTimeoutSeconds = f.StateTimeoutSeconds
	domain := strings.ToLower(f.Domain)
	if !mesosDNSDomain.MatchString(domain) {
		return Config{}, &FieldError{Field: "domain", Reason: fmt.Sprintf("not a valid domain name: %q", f.Domain)}
	}
	m.Domain = domain + "."
	// records.Config.initSOA: "@" in the rname becomes ".", both names
	// get their final dot. The SOA record's MINIMUM is the ttl
	// (resolver.formatSOA), not SOAMinttl, which Mesos-DNS never puts
	// in a record.
	rname := f.SOARname
	if email.Email != nil && email.SOARname == nil {
		rname = *email.Email
	}
	m.SOARname = strings.TrimRight(strings.ReplaceAll(rname, "@", "."), ".") + "."
	m.SOAMname = strings.TrimRight(f.SOAMname, ".") + "."
	m.SOARefresh, m.SOARetry, m.SOAExpire = f.SOARefresh, f.SOARetry, f.SOAExpire
	if f.TTL < 0 {
		return Config{}, &FieldError{Field: "ttl", Reason: fmt.Sprintf("must not be negative, got %d", f.TTL)}
	}
	m.TTL = int(f.TTL)
	m.SOAMinttl = uint32(f.TTL)
	if f.RefreshSeconds <= 0 {
		return Config{}, &FieldError{Field: "refreshSeconds", Reason: fmt.Sprintf("must be positive, got %d", f.RefreshSeconds)}
	}
	m.RefreshSeconds = f.RefreshSeconds
	m.EnforceRFC952 = f.EnforceRFC952
	m.SRVRecordDefaultWeight = f.SRVRecordDefaultWeight
	m.EnumerationOn = f.EnumerationOn
	m.RecursionAvailable = f.RecurseOn
	// resolver.New: a zero timeout means 5 s.
	timeout := 5 * time.Second
	if f.Timeout > 0 {
		timeout = time.Duration(f.Timeout) * time.Second
	} else if f.Timeout < 0 {
		return Config{}, &FieldError{Field: "timeout", Reason: fmt.Sprintf("must not be negative, got %d", f.Timeout)}
	}
	m.ForwardTimeout = Duration(timeout)
	if !f.SetTruncateBit {
		return Config{}, &FieldError{Field: "SetTruncateBit", Reason: "false is not supported: spartan always sets TC on a UDP reply it had to cut, so the client retries over TCP (RFC 1035); remove the field"}
	}

	// The ports. Mesos-DNS binds exactly these and nothing else.
	m.Listen = nil
	if f.DNSOn {
		hp, err := mesosDNSAddr("listener", f.Listener, "port", f.Port)
		if err != nil {
			return Config{}, err
		}
		m.Listen = []string{hp}
	}
	m.HTTP = ""
	if f.HTTPOn {
		hp, err := mesosDNSAddr("HTTPListener", f.HTTPListener, "httpPort", f.HTTPPort)
		if err != nil {
			return Config{}, err
		}
		m.HTTP = hp
	}
	// Mesos-DNS answers every client: so does its drop-in.
	m.AllowNets = []string{"0.0.0.0/0", "::/0"}

	// Talking to Mesos (records.Config.initCertificates and
	// initMesosAuthentication).
	if (f.CertFile == "") != (f.KeyFile == "") {
		field, reason := "KeyFile", "missing private key for CertFile"
		if f.CertFile == "" {
			field, reason = "CertFile", "missing certificate for KeyFile"
		}
		return Config{}, &FieldError{Field: field, Reason: reason}
	}
	m.MesosHTTPSOn = f.MesosHTTPSOn
	m.CACertFile, m.CertFile, m.KeyFile = f.CACertFile, f.CertFile, f.KeyFile
	switch f.MesosAuthentication {
	case "":
		if f.MesosCredentials.Principal != "" {
			res.Ignored = append(res.Ignored, "MesosCredentials: mesosAuthentication is not \"basic\", so Mesos-DNS does not send them")
		}
		if f.IAMConfigFile != "" {
			res.Ignored = append(res.Ignored, "IAMConfigFile: mesosAuthentication is not \"iam\", so Mesos-DNS does not use it")
		}
	case "basic":
		if f.MesosCredentials.Principal == "" && f.MesosCredentials.Secret == "" {
			return Config{}, &FieldError{Field: "MesosCredentials", Reason: "mesosAuthentication \"basic\" needs a principal and a secret"}
		}
		m.MesosCredentials = Credentials{Principal: f.MesosCredentials.Principal, Secret: f.MesosCredentials.Secret}
		if m.MesosCredentials.Principal == "" {
			return Config{}, &FieldError{Field: "MesosCredentials.principal", Reason: "empty: spartan sends Basic credentials only with a principal"}
		}
	case "iam":
		return Config{}, &FieldError{Field: "mesosAuthentication", Reason: "\"iam\" (DC/OS service-account login with IAMConfigFile) is not supported by spartan; use \"basic\" with MesosCredentials, or no authentication"}
	default:
		return Config{}, &FieldError{Field: "mesosAuthentication", Reason: fmt.Sprintf("want \"\", \"basic\" or \"iam\", got %q", f.MesosAuthentication)}
	}

	cfg := Default()
	// Master mode alone: Mesos-DNS's ports are master mode's, and the
	// node-local proxy (and the metrics port) would bind addresses the
	// file never named.
	cfg.Listen = []string{}
	cfg.Metrics = ""
	cfg.ClusterDomain = m.Domain
	cfg.Master = &m
	return cfg, nil
}

// mesosDNSAddr joins a listener address and a port as Mesos-DNS does
// (net.JoinHostPort), requiring an IP address.
func mesosDNSAddr(hostField, host, portField string, port int) (string, error) {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", &FieldError{Field: hostField, Reason: fmt.Sprintf("not an IP address: %q (spartan binds addresses, not host names)", host)}
	}
	if port < 1 || port > 65535 {
		return "", &FieldError{Field: portField, Reason: fmt.Sprintf("must be a port between 1 and 65535, got %d", port)}
	}
	return netip.AddrPortFrom(ip, uint16(port)).String(), nil
}

// mesosDNSResolvers normalizes a resolver list as Mesos-DNS's
// validateResolvers does: IP or IP:port (53 by default), no duplicates.
func mesosDNSResolvers(field string, rs []string) ([]string, error) {
	out := make([]string, 0, len(rs))
	for i, r := range rs {
		hp, err := NormalizeHostPort(r, DNSPort)
		if err != nil {
			return nil, &FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: err.Error()}
		}
		if slices.Contains(out, hp) {
			return nil, &FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: fmt.Sprintf("duplicate resolver %s", r)}
		}
		out = append(out, hp)
	}
	return out, nil
}

// mesosDNSZonesUnambiguous is Mesos-DNS's validateZoneResolvers rule: no
// zone resolver for the Mesos domain, and no zone (the Mesos domain
// included) below another.
func mesosDNSZonesUnambiguous(zrs map[string][]string, domain string) error {
	all := []string{"." + domain}
	for zone := range zrs {
		if zone == domain {
			return &FieldError{Field: fmt.Sprintf("zoneResolvers[%q]", zone), Reason: "the Mesos domain cannot have zone resolvers"}
		}
		all = append(all, "."+zone)
	}
	slices.Sort(all)
	for _, a := range all {
		for _, b := range all {
			if a != b && strings.HasSuffix(a, b) {
				return &FieldError{Field: fmt.Sprintf("zoneResolvers[%q]", strings.TrimPrefix(b, ".")),
					Reason: fmt.Sprintf("ambiguous: %s is masked by %s", strings.TrimPrefix(a, "."), strings.TrimPrefix(b, "."))}
			}
		}
	}
	return nil
}

// validIPSources is Mesos-DNS's validateIPSources.
func validIPSources(srcs []string) error {
	if len(srcs) == 0 {
		return &FieldError{Field: "IPSources", Reason: "empty"}
	}
	for i, s := range srcs {
		switch s {
		case "host", "docker", "mesos", "netinfo":
		default:
			return &FieldError{Field: fmt.Sprintf("IPSources[%d]", i), Reason: fmt.Sprintf("invalid IP source %q", s)}
		}
		if slices.Contains(srcs[:i], s) {
			return &FieldError{Field: fmt.Sprintf("IPSources[%d]", i), Reason: fmt.Sprintf("duplicate IP source %q", s)}
		}
	}
	return nil
}

// localResolvers is Mesos-DNS's GetLocalDNS: the nameservers of
// resolv.conf that are not the host's own addresses.
func localResolvers(o MesosDNSOptions) ([]string, error) {
	path := o.ResolvConf
	if path == "" {
		path = "/etc/resolv.conf"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the host's resolvers: %w", err)
	}
	cc, err := dns.ClientConfigFromReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	local := o.LocalAddrs
	if local == nil {
		local = interfaceAddrs()
	}
	var out []string
	for _, s := range cc.Servers {
		a, err := netip.ParseAddr(s)
		if err != nil || slices.Contains(local, a.Unmap()) {
			continue
		}
		out = append(out, a.String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s names no nameserver that is not this host", path)
	}
	return out, nil
}

// interfaceAddrs returns the host's addresses, loopback included.
func interfaceAddrs() []netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

// Marshal writes cfg as the JSON a spartan configuration file holds,
// indented, with every field: what -print-config prints, and what Parse
// reads back into the same configuration.
func Marshal(cfg Config) ([]byte, error) {
	out, err := json.Marshal(cfg, jsontext.WithIndent("  "))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return append(out, '\n'), nil
}
