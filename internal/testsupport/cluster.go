package testsupport

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// This file builds multi-node topologies out of network namespaces: an
// Ethernet segment (a Linux bridge in a namespace of its own, so nothing is
// created in the host's namespace and parallel tests cannot collide), veth
// links from node namespaces to it, processes inside a node (in-process
// servers go in with NetNS.Do) and real clients (dig, glibc's getent) run
// from a node.

// Segment is one Ethernet segment: a Linux bridge named "br0" inside a
// namespace of its own (the hub). Namespaces join it with Attach.
type Segment struct {
	Hub   *NetNS
	ports atomic.Int32
}

// NewSegment creates the hub namespace and its bridge; both go away when
// the test ends (deleting the hub deletes the bridge and every veth pair,
// whose other ends vanish with it). Like NewNetNS, it skips the test when
// not root or when network namespaces are unavailable.
func NewSegment(t testing.TB) *Segment {
	t.Helper()
	s := &Segment{Hub: NewNetNS(t)}
	s.Hub.Run(t, "ip", "link", "add", "br0", "type", "bridge")
	s.Hub.Run(t, "ip", "link", "set", "br0", "up")
	return s
}

// Link is the namespace end of a veth pair attached to a Segment.
type Link struct {
	NS  *NetNS
	Dev string
}

// Attach connects ns to the segment with a veth pair whose namespace end is
// named dev (for example "eth0"), brings it up and gives it the addresses
// (CIDR notation; use 192.0.2.0/24 and 203.0.113.0/24 only).
func (s *Segment) Attach(t testing.TB, ns *NetNS, dev string, cidrs ...string) *Link {
	t.Helper()
	port := fmt.Sprintf("p%d", s.ports.Add(1))
	// Both ends are made in the hub and the peer moved at once, so no
	// interface ever appears in the host's namespace.
	s.Hub.Run(t, "ip", "link", "add", port, "type", "veth", "peer", "name", dev, "netns", ns.Name)
	s.Hub.Run(t, "ip", "link", "set", port, "master", "br0")
	s.Hub.Run(t, "ip", "link", "set", port, "up")
	for _, c := range cidrs {
		ns.Run(t, "ip", "addr", "add", c, "dev", dev)
	}
	ns.Run(t, "ip", "link", "set", dev, "up")
	return &Link{NS: ns, Dev: dev}
}

// Down takes the link down inside its namespace: the node drops off the
// segment without a word (no ICMP), as a partitioned or powered-off host.
func (l *Link) Down(t testing.TB) { t.Helper(); l.NS.Run(t, "ip", "link", "set", l.Dev, "down") }

// Up brings the link back.
func (l *Link) Up(t testing.TB) { t.Helper(); l.NS.Run(t, "ip", "link", "set", l.Dev, "up") }

// Start starts bin with args inside the namespace as a Process (output
// captured and logged on failure, killed when the test ends). "ip netns
// exec" execs bin, so the Process is bin itself: signals reach it
// directly. Should the test process die without cleaning up (a -timeout
// panic), the kernel kills the process too.
func (ns *NetNS) Start(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	cmd := ns.Command(context.Background(), bin, args...)
	// Kept across "ip netns exec"'s execve: bin is not setuid.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return StartCmd(t, cmd)
}

// Dig runs dig inside the namespace against server ("host:port", or a
// bare host for port 53), bounded like Dig: one try, a 2 s timeout (later
// args win). A non-nil error means dig failed, for example with "no
// servers could be reached" (exit status 9) when the query timed out.
func (ns *NetNS) Dig(t testing.TB, server string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("dig"); err != nil {
		SkipOrFail(t, "dig not installed (apt-get install dnsutils); skipping a test that needs it")
	}
	host, port := server, "53"
	if ap, err := netip.ParseAddrPort(server); err == nil {
		host, port = ap.Addr().String(), fmt.Sprint(ap.Port())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"@" + host, "-p", port, "+time=2", "+tries=1"}, args...)
	cmd := ns.Command(ctx, "dig", full...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s dig %s: %w: %s%s", ns.Name, strings.Join(full, " "), err, out, stderr.String())
	}
	return string(out), nil
}

// Getent runs "getent hosts name" inside the namespace: glibc's stub
// resolver reading the namespace's resolv.conf (/etc/netns/NAME). It
// returns getent's standard output; a non-nil error means the lookup
// failed.
func (ns *NetNS) Getent(t testing.TB, name string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("getent"); err != nil {
		SkipOrFail(t, "getent not installed; skipping a test that needs glibc's resolver")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, "getent", "hosts", name)
	// "ip netns exec" warns on stderr about /etc/netns files without a
	// counterpart in /etc (such as a saved resolv.conf); only stdout counts.
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s getent hosts %s: %w: %s", ns.Name, name, err, stderr.String())
	}
	return string(out), nil
}

// DigResult is the part of dig's default output tests assert on.
type DigResult struct {
	// Rcode is the header's status, such as "NOERROR" or "NXDOMAIN".
	Rcode string
	// Flags are the header's flags ("qr", "aa", "rd", "ra", "tc" ...).
	Flags []string
	// Answer, Authority and Additional are the parsed sections.
	Answer, Authority, Additional []dns.RR
}

// HasFlag reports whether the header carried flag (such as "aa").
func (r DigResult) HasFlag(flag string) bool {
	for _, f := range r.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// ParseDig parses dig's default output (header comments and sections).
func ParseDig(out string) (DigResult, error) {
	var r DigResult
	var section *[]dns.RR
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, ";; ->>HEADER<<-"):
			_, rest, ok := strings.Cut(line, "status: ")
			if !ok {
				return r, fmt.Errorf("dig header without status: %q", line)
			}
			r.Rcode, _, _ = strings.Cut(rest, ",")
		case strings.HasPrefix(line, ";; flags:"):
			flags, _, _ := strings.Cut(strings.TrimPrefix(line, ";; flags:"), ";")
			r.Flags = strings.Fields(flags)
		case line == ";; ANSWER SECTION:":
			section = &r.Answer
		case line == ";; AUTHORITY SECTION:":
			section = &r.Authority
		case line == ";; ADDITIONAL SECTION:":
			section = &r.Additional
		case line == "" || strings.HasPrefix(line, ";"):
			section = nil
		case section != nil:
			rr, err := dns.NewRR(line)
			if err != nil {
				return r, fmt.Errorf("parsing dig record %q: %w", line, err)
			}
			*section = append(*section, rr)
		}
	}
	if r.Rcode == "" {
		return r, fmt.Errorf("no dig header in output:\n%s", out)
	}
	return r, nil
}
