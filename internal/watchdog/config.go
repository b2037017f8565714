package watchdog

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/resolvconf"
)

// Config is the whole configuration of the watchdog. Start from
// DefaultConfig, decode a file over it (ParseConfig/LoadConfig), apply flags,
// then call Validate.
//
// resolv.conf cannot carry ports: nameserver lines name an IP and clients
// always use port 53. The file lists the IPs of Proxy (and of Upstreams)
// whatever their ports; the ports given are the ones probed. A proxy on
// another port (as in some tests) is therefore probed there while clients
// reading the file ask port 53 of the same IP; Warnings says so.
type Config struct {
	// ResolvConf is the managed file. Default: "/etc/resolv.conf".
	ResolvConf string `json:"resolvConf"`
	// Proxy lists the proxy's addresses, each an IP with an optional port
	// (53 when absent). The proxy is up when any of them answers
	// ReadyName; while it is up the file lists their IPs (at most 3).
	// Default: ["169.254.20.10:53"], spartan's default listen address.
	Proxy []string `json:"proxy"`
	// Upstreams lists the resolvers the file names while the proxy is
	// down (the first 3). Empty means the nameservers of the original
	// file saved at take-over. Default: [].
	Upstreams []string `json:"upstreams"`
	// Interval between health checks. Default: "5s".
	Interval config.Duration `json:"interval"`
	// Timeout of one health-check query. Default: "1s".
	Timeout config.Duration `json:"timeout"`
	// FailAfter is how many consecutive failed checks mark the proxy
	// down. Default: 3.
	FailAfter int `json:"failAfter"`
	// RecoverAfter is how many consecutive good checks mark it up again.
	// Default: 2.
	RecoverAfter int `json:"recoverAfter"`
	// RestartAfter is how long the proxy may stay failing before the
	// watchdog asks systemd to restart RestartUnit, and then again after
	// each further RestartAfter; "0s" never restarts it. Default: "0s".
	RestartAfter config.Duration `json:"restartAfter"`
	// RestartUnit is the systemd unit restarted. Default: "spartan.service".
	RestartUnit string `json:"restartUnit"`
	// ReadyName is the name whose A record proves the proxy is serving.
	// Default: "ready.spartan.".
	ReadyName string `json:"readyName"`
	// Symlink is what happens when ResolvConf is a symbolic link:
	// "replace" turns it into a regular file (the link is recorded and
	// put back by -restore); "follow" writes the file it points to.
	// Default: "replace".
	Symlink string `json:"symlink"`
	// Options are resolver options written unless the original file sets
	// an option of the same name. Default: ["timeout:1", "attempts:3"].
	Options []string `json:"options"`
	// Log configures logging.
	Log Log `json:"log"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default: "info".
	Level string `json:"level"`
	// Format is text or json. Default: "text".
	Format string `json:"format"`
}

// DefaultConfig returns the configuration used for every field a file and
// the flags leave out.
func DefaultConfig() Config {
	return Config{
		ResolvConf:   "/etc/resolv.conf",
		Proxy:        append([]string(nil), config.Default().Listen...),
		Interval:     config.Duration(5 * time.Second),
		Timeout:      config.Duration(time.Second),
		FailAfter:    3,
		RecoverAfter: 2,
		RestartUnit:  "spartan.service",
		ReadyName:    "ready.spartan.",
		Symlink:      string(resolvconf.SymlinkReplace),
		Options:      []string{"timeout:1", "attempts:3"},
		Log:          Log{Level: "info", Format: "text"},
	}
}

// LoadConfig reads and decodes the file at path over DefaultConfig. It does
// not validate: flags may still change fields. Errors name the file, the
// field and the reason.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("watchdog config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("watchdog config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes data over DefaultConfig strictly: unknown fields,
// wrong types and trailing data are errors.
func ParseConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	if err := config.DecodeStrict(data, &cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func fieldErr(field, format string, args ...any) error {
	return &config.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks every field and normalizes addresses to ip:port and
// ReadyName to a lower-case FQDN. It is the one place a configuration is
// checked.
func (c *Config) Validate() error {
	if c.ResolvConf == "" {
		return fieldErr("resolvConf", "empty path")
	}
	if len(c.Proxy) == 0 {
		return fieldErr("proxy", "at least one address is required")
	}
	for _, list := range []struct {
		name  string
		addrs []string
	}{{"proxy", c.Proxy}, {"upstreams", c.Upstreams}} {
		for i, a := range list.addrs {
			hp, err := config.NormalizeHostPort(strings.TrimSpace(a), config.DNSPort)
			if err != nil {
				return fieldErr(fmt.Sprintf("%s[%d]", list.name, i), "%v", err)
			}
			list.addrs[i] = hp
		}
	}
	for _, d := range []struct {
		name string
		v    config.Duration
	}{{"interval", c.Interval}, {"timeout", c.Timeout}} {
		if d.v <= 0 {
			return fieldErr(d.name, "must be positive, got %s", d.v)
		}
	}
	if c.RestartAfter < 0 {
		return fieldErr("restartAfter", "must not be negative, got %s", c.RestartAfter)
	}
	if c.FailAfter < 1 {
		return fieldErr("failAfter", "must be at least 1, got %d", c.FailAfter)
	}
	if c.RecoverAfter < 1 {
		return fieldErr("recoverAfter", "must be at least 1, got %d", c.RecoverAfter)
	}
	if c.RestartAfter > 0 && c.RestartUnit == "" {
		return fieldErr("restartUnit", "empty, but restartAfter is set")
	}
	var err error
	if c.ReadyName, err = config.NormalizeDomain(c.ReadyName); err != nil {
		return fieldErr("readyName", "%v", err)
	}
	if !resolvconf.SymlinkPolicy(c.Symlink).Valid() {
		return fieldErr("symlink", "want replace or follow, got %q", c.Symlink)
	}
	for i, o := range c.Options {
		if o == "" || strings.ContainsAny(o, " \t\r\n#;") {
			return fieldErr(fmt.Sprintf("options[%d]", i), "not a single resolver option: %q", o)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fieldErr("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fieldErr("log.format", "want text or json, got %q", c.Log.Format)
	}
	return nil
}

// Warnings lists settings that are valid but probably not what was meant.
// Call it after Validate.
func (c *Config) Warnings() []string {
	var w []string
	for _, list := range []struct {
		name  string
		addrs []string
	}{{"proxy", c.Proxy}, {"upstreams", c.Upstreams}} {
		for _, a := range list.addrs {
			if ap, err := netip.ParseAddrPort(a); err == nil && ap.Port() != config.DNSPort {
				w = append(w, fmt.Sprintf("%s %s: resolv.conf cannot name a port, so clients will ask %s on port 53",
					list.name, a, ap.Addr()))
			}
		}
	}
	if ips := uniqueIPs(c.Proxy); len(ips) > resolvconf.MaxNameservers {
		w = append(w, fmt.Sprintf("proxy: %d addresses, but resolv.conf lists only the first %d", len(ips), resolvconf.MaxNameservers))
	}
	return w
}

// uniqueIPs returns the IPs of ip:port addresses, in order, without
// duplicates. Addresses must have been validated.
func uniqueIPs(addrs []string) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || seen[ap.Addr()] {
			continue
		}
		seen[ap.Addr()] = true
		out = append(out, ap.Addr())
	}
	return out
}
