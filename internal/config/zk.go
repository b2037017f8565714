package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ZKPort is the ZooKeeper client port assumed for a server given without
// one, as ZooKeeper's own clients assume it.
const ZKPort = 2181

// ZKURL is a parsed master.zk: the ZooKeeper ensemble and the path under
// which the Mesos masters register.
type ZKURL struct {
	// Servers are the ensemble's host:port addresses, in the URL's order.
	Servers []string
	// Path is the absolute znode path the masters' nodes are children of
	// ("/mesos").
	Path string
	// User and Password are digest credentials ("user:pass@"); User is
	// empty when the URL has none.
	User, Password string
}

// ParseZKURL parses a ZooKeeper URL as Mesos and Mesos-DNS accept it:
// zk://[user:pass@]host[:port][,host[:port]...]/path. The scheme is matched
// in any case (Mesos-DNS parses it with net/url, which lower-cases it); the
// credentials are for ZooKeeper's digest scheme; a server without a port
// gets 2181; the path must name a znode below the root.
func ParseZKURL(s string) (ZKURL, error) {
	const scheme = "zk://"
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return ZKURL{}, errors.New(`want zk://[user:pass@]host:port[,host:port...]/path: no "zk://" at the start`)
	}
	rest := s[len(scheme):]
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		return ZKURL{}, fmt.Errorf("unexpected %q: a ZooKeeper URL has no query or fragment", rest[i])
	}
	authority, path, ok := strings.Cut(rest, "/")
	if !ok {
		return ZKURL{}, errors.New("no path: the masters' znode path is required (zk://host:2181/mesos)")
	}
	var u ZKURL
	u.Path = "/" + path
	if err := validZNodePath(u.Path); err != nil {
		return ZKURL{}, err
	}
	// The credentials end at the last '@', as in Mesos's zookeeper::URL.
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		cred := authority[:at]
		authority = authority[at+1:]
		user, pass, ok := strings.Cut(cred, ":")
		if !ok || user == "" {
			return ZKURL{}, errors.New("credentials must be user:password (ZooKeeper's digest scheme)")
		}
		u.User, u.Password = user, pass
	}
	if authority == "" {
		return ZKURL{}, errors.New("no ZooKeeper server before the path")
	}
	for i, hp := range strings.Split(authority, ",") {
		norm, err := zkServer(hp)
		if err != nil {
			return ZKURL{}, fmt.Errorf("server %d: %w", i+1, err)
		}
		u.Servers = append(u.Servers, norm)
	}
	return u, nil
}

// String returns the URL with its password replaced by "xxxxx", for logs
// and errors.
func (u ZKURL) String() string {
	var b strings.Builder
	b.WriteString("zk://")
	if u.User != "" {
		b.WriteString(u.User + ":xxxxx@")
	}
	b.WriteString(strings.Join(u.Servers, ","))
	b.WriteString(u.Path)
	return b.String()
}

// zkServer checks one host[:port] of the URL and returns it as host:port.
func zkServer(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty server (a stray comma?)")
	}
	host, port := s, strconv.Itoa(ZKPort)
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return "", fmt.Errorf("bad port %q in %q", p, s)
		}
	} else if strings.Count(s, ":") == 1 || strings.HasPrefix(s, "[") {
		return "", fmt.Errorf("not host:port: %q", s)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("IPv6 zone in %q", s)
		}
		return net.JoinHostPort(a.String(), port), nil
	}
	if !IsHostName(host) {
		return "", fmt.Errorf("not an IP address or host name: %q", host)
	}
	return net.JoinHostPort(host, port), nil
}

// IsHostName reports whether s is a DNS host name: dot-separated labels
// of letters, digits and hyphens, none empty or starting or ending with a
// hyphen, at most 253 characters, with an optional final dot.
func IsHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

// validZNodePath checks a path as ZooKeeper's PathUtils.validatePath
// does, and refuses the root, which Mesos's detector refuses too
// ("Expecting a (chroot) path for ZooKeeper ('/' is not supported)").
func validZNodePath(p string) error {
	if p == "/" {
		return errors.New(`path "/" is the ZooKeeper root: name the masters' znode (zk://host:2181/mesos)`)
	}
	if strings.HasSuffix(p, "/") {
		return fmt.Errorf("path %q ends with '/'", p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return fmt.Errorf("path %q has an empty element", p)
		case ".", "..":
			return fmt.Errorf("path %q has a relative element %q", p, seg)
		}
	}
	for _, r := range p {
		// ZooKeeper refuses NUL, control characters and a few Unicode
		// ranges in node names.
		if r < 0x20 || r >= 0x7f && r <= 0x9f || r >= 0xd800 && r <= 0xf8ff || r >= 0xfff0 {
			return fmt.Errorf("path %q has a character ZooKeeper refuses (%U)", p, r)
		}
	}
	return nil
}
