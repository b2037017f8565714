// Package mesos is spartan's master mode: it follows the Mesos master's
// state, generates the cluster zone with exactly the names Mesos-DNS
// generates, serves it through a zones.Store, and offers Mesos-DNS's HTTP
// API.
//
// Naming follows Mesos-DNS (docs/naming.md and its generator), quirks
// included: records under both the raw and the sanitized DiscoveryInfo
// name, masterN numbering, both _tcp and _udp SRV records for every host
// port. Where Mesos-DNS would build a label longer than 63 octets, which
// DNS cannot carry, the task part of the label is cut so the label fits
// (hash and agent suffixes are kept, so names stay unique; a '-' left at
// the cut is trimmed). A raw DiscoveryInfo name that is not a valid host
// name (characters other than letters, digits, '-', '_', '.', or an empty
// or over-long label) is only published sanitized. Names over 255 octets
// are left out and counted, and so are a task's canonical names (and its
// SRV records, which point at them) when the agent ID's last field is too
// long for any label. At most MaxTaskPorts host ports of one task get SRV
// records.
package mesos

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spartan-dns/spartan/internal/zones"
)

// Options are the generator's settings, derived from config.Master.
type Options struct {
	// Domain is the zone origin, lower-case and fully qualified ("mesos.").
	Domain string
	// Masters are the Mesos masters as host:port, in order: they give
	// master.<domain> and masterN.<domain>. Master mode passes
	// master.masters, or with ZooKeeper the masters registered there,
	// the leader first.
	Masters []string
	// NS is the zone's name server (the SOA mname); Listeners are its
	// addresses, published as its A/AAAA records.
	NS        string
	Listeners []netip.Addr
	// IPSources orders where task addresses come from.
	IPSources []string
	// Spec sanitizes labels: RFC1123 or RFC952.
	Spec LabelFunc
	// HealthyOnly leaves out tasks whose latest status is unhealthy.
	HealthyOnly bool
	// SRVWeight is the weight of every SRV record (Mesos-DNS's
	// SRVRecordDefaultWeight, 1 by default there and here).
	SRVWeight uint16
	// SOA holds the SOA fields; its TTL is the TTL of every record.
	SOA zones.SOA
	// Resolve turns a host name (a framework's or agent's, when not an
	// IP address) into addresses; nil resolves nothing.
	Resolve func(host string) []netip.Addr
}

// GenStats counts what a generation produced.
type GenStats struct {
	// Tasks is the number of tasks that got records.
	Tasks int
	// Dropped counts names left out because DNS cannot carry them.
	Dropped int
	// PortsCapped counts tasks with more than MaxTaskPorts host ports,
	// of which only the first MaxTaskPorts got SRV records.
	PortsCapped int
}

// MaxTaskPorts bounds the host ports of one task that get SRV records: a
// "ports" resource of "[1-65535]" would otherwise make 262,140 records for
// one task. Ports past the bound, in the resource's order, are left out.
const MaxTaskPorts = 1024

// sink receives generated records.
type sink interface {
	addr(name string, ip netip.Addr)
	srv(name, target string, port uint16)
}

// nameSink receives generated records with owner names as bytes, valid
// only during the call: names are assembled in a reused buffer, so a zone
// of a million records does not allocate a string for each.
type nameSink interface {
	addrName(name []byte, ip netip.Addr)
	srvName(name []byte, target string, port uint16)
	// str returns name as a string, shared with the records' owner names
	// where possible.
	str(name []byte) string
}

// stringSink adapts a sink to nameSink.
type stringSink struct{ sink }

func (s stringSink) addrName(name []byte, ip netip.Addr) { s.addr(string(name), ip) }
func (s stringSink) srvName(name []byte, target string, port uint16) {
	s.srv(string(name), target, port)
}
func (s stringSink) str(name []byte) string { return string(name) }

// taskSink is told which framework and task the following records are for.
type taskSink interface {
	framework(fw *Framework)
	task(t *Task)
}

// BuildZone generates the zone for st with the given serial.
func BuildZone(st *State, opt *Options, serial uint32) (*zones.Zone, GenStats) {
	zs := &zoneSink{b: zones.NewBuilder(opt.Domain, opt.SOA, []string{opt.NS}), ttl: opt.SOA.TTL, weight: opt.SRVWeight}
	// Size the name table once: a task brings up to about seven names
	// (canonical and short names and their SRV names, under the plain
	// and the ".slave" tails; instances of an app share the short ones).
	tasks := 0
	for i := range st.Frameworks {
		tasks += len(st.Frameworks[i].Tasks)
	}
	zs.b.Grow(7*tasks + 64)
	stats := generate(st, opt, zs)
	return zs.b.Build(serial), stats
}

// EmptyZone is the zone served before any state was read: SOA, NS and the
// name server's addresses, NXDOMAIN for everything else.
func EmptyZone(opt *Options, serial uint32) *zones.Zone {
	zs := &zoneSink{b: zones.NewBuilder(opt.Domain, opt.SOA, []string{opt.NS}), ttl: opt.SOA.TTL}
	for _, ip := range opt.Listeners {
		zs.addr(opt.NS, ip)
	}
	return zs.b.Build(serial)
}

type zoneSink struct {
	b      *zones.Builder
	ttl    uint32
	weight uint16
}

func (z *zoneSink) addr(name string, ip netip.Addr) { z.addrName([]byte(name), ip) }

func (z *zoneSink) srv(name, target string, port uint16) { z.srvName([]byte(name), target, port) }

func (z *zoneSink) addrName(name []byte, ip netip.Addr) { z.b.AddAddr(name, ip, z.ttl) }

func (z *zoneSink) srvName(name []byte, target string, port uint16) {
	// Priority 0 and the configured weight, as Mesos-DNS's
	// resolver.formatSRV writes every SRV record.
	z.b.AddSRV(name, target, port, 0, z.weight, z.ttl)
}

func (z *zoneSink) str(name []byte) string { return z.b.Name(name) }

type generator struct {
	opt      *Options
	out      nameSink
	ts       taskSink
	tail     string // "." + domain
	slaveIPs map[string][]netip.Addr
	resolved map[string][]netip.Addr
	stats    GenStats
	tailB    []byte
	// Buffers names are assembled in, reused from task to task.
	buf, short, canon, srvLabel, fname, base, label []byte
}

// generate emits every record of st to out, in Mesos-DNS's order.
func generate(st *State, opt *Options, out sink) GenStats {
	return generateAll(st, opt, out).stats
}

// generateAll is generate, returning the generator for what it learned
// (the agents' addresses).
func generateAll(st *State, opt *Options, out sink) *generator {
	g := newGenerator(opt, out, make(map[string][]netip.Addr, len(st.Slaves)))
	g.frameworks(st)
	g.slaves(st)
	for _, ip := range opt.Listeners {
		g.addr(opt.NS, ip)
	}
	g.masters(st.Leader)
	g.tasks(st)
	return g
}

func newGenerator(opt *Options, out sink, slaveIPs map[string][]netip.Addr) *generator {
	g := &generator{
		opt:      opt,
		tail:     "." + opt.Domain,
		tailB:    []byte("." + opt.Domain),
		slaveIPs: slaveIPs,
		resolved: make(map[string][]netip.Addr),
	}
	if ns, ok := out.(nameSink); ok {
		g.out = ns
	} else {
		g.out = stringSink{out}
	}
	g.ts, _ = out.(taskSink)
	return g
}

// maxName is the longest name, in presentation form with the final dot,
// that fits the 255 octets of a DNS name.
const maxName = 254

func (g *generator) addr(name string, ip netip.Addr) {
	g.addrName(append(g.buf[:0], name...), ip)
}

func (g *generator) srv(name, target string, port uint16) {
	g.srvName(append(g.buf[:0], name...), target, port)
}

func (g *generator) addrName(name []byte, ip netip.Addr) {
	if len(name) > maxName {
		g.stats.Dropped++
		return
	}
	g.out.addrName(name, ip)
}

func (g *generator) srvName(name []byte, target string, port uint16) {
	if len(name) > maxName || len(target) > maxName {
		g.stats.Dropped++
		return
	}
	g.out.srvName(name, target, port)
}

// name assembles parts in the name buffer.
func (g *generator) name(parts ...[]byte) []byte {
	b := g.buf[:0]
	for _, p := range parts {
		b = append(b, p...)
	}
	g.buf = b
	return b
}

// hostIPs returns host as an address, or the first IPv4 and first IPv6
// address it resolves to.
func (g *generator) hostIPs(host string) []netip.Addr {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap().WithZone("")}
	}
	if host == "" || g.opt.Resolve == nil {
		return nil
	}
	if ips, ok := g.resolved[host]; ok {
		return ips
	}
	var v4, v6 netip.Addr
	for _, a := range g.opt.Resolve(host) {
		a = a.Unmap().WithZone("")
		if a.Is4() && !v4.IsValid() {
			v4 = a
		} else if a.Is6() && !v6.IsValid() {
			v6 = a
		}
	}
	var ips []netip.Addr
	for _, a := range []netip.Addr{v4, v6} {
		if a.IsValid() {
			ips = append(ips, a)
		}
	}
	g.resolved[host] = ips
	return ips
}

// splitPID returns the host and port of a libprocess PID.
func splitPID(pid string) (host string, port uint16, ok bool) {
	addr := pidAddr(pid)
	if addr == "" {
		return "", 0, false
	}
	h, p, _ := net.SplitHostPort(addr)
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return h, 0, true
	}
	return h, uint16(n), true
}

// frameworks: {fw}.domain → the scheduler's host, _framework._tcp.{fw}.domain
// → {fw}.domain at the scheduler's port.
func (g *generator) frameworks(st *State) {
	for i := range st.Frameworks {
		fw := &st.Frameworks[i]
		host, port, ok := splitPID(fw.PID)
		if !ok {
			host, port = fw.Hostname, 0
		}
		ips := g.hostIPs(host)
		fname := domainFrag(fw.Name, g.opt.Spec)
		if len(ips) == 0 || fname == "" {
			continue
		}
		a := fname + g.tail
		for _, ip := range ips {
			g.addr(a, ip)
		}
		if port != 0 {
			g.srv("_framework._tcp."+a, a, port)
		}
	}
}

// slaves: slave.domain → every agent, _slave._tcp.domain → slave.domain at
// each agent's port. It also records each agent's addresses for its tasks.
func (g *generator) slaves(st *State) {
	a := "slave" + g.tail
	srvName := "_slave._tcp" + g.tail
	for i := range st.Slaves {
		s := &st.Slaves[i]
		host, port, ok := splitPID(s.PID)
		var ips []netip.Addr
		if ok {
			ips = g.hostIPs(host)
		}
		for _, ip := range ips {
			g.addr(a, ip)
		}
		if len(ips) > 0 && port != 0 {
			g.srv(srvName, a, port)
		}
		// An agent whose address is unknown still runs tasks: they get
		// their task records, only not the ".slave" addresses.
		g.slaveIPs[s.ID] = ips
	}
}

// masters: leader.domain and _leader._tcp/_udp.domain for the leader;
// master.domain for the leader and every configured master; masterN.domain
// for each configured master in order, plus one for the leader when it is
// not configured.
func (g *generator) masters(leader string) {
	leaderAddr, ok := leaderAddrPort(leader)
	if !ok {
		return
	}
	lip, port := leaderAddr.Addr(), leaderAddr.Port()
	lname := "leader" + g.tail
	all := "master" + g.tail
	g.addr(lname, lip)
	g.addr(all, lip)
	g.srv("_leader._tcp"+g.tail, lname, port)
	g.srv("_leader._udp"+g.tail, lname, port)

	inAll := map[netip.Addr]bool{lip: true}
	leaderNumbered := false
	idx := 0
	for _, m := range g.opt.Masters {
		ap, err := netip.ParseAddrPort(m)
		if err != nil {
			continue
		}
		ip := ap.Addr().Unmap().WithZone("")
		isLeader := netip.AddrPortFrom(ip, ap.Port()) == leaderAddr
		if !isLeader {
			if inAll[ip] {
				continue // the same address listed twice
			}
			inAll[ip] = true
			g.addr(all, ip)
		} else if leaderNumbered {
			continue
		}
		g.addr("master"+strconv.Itoa(idx)+g.tail, ip)
		idx++
		if isLeader {
			leaderNumbered = true
		}
	}
	if !leaderNumbered {
		g.addr("master"+strconv.Itoa(idx)+g.tail, lip)
	}
}

func (g *generator) tasks(st *State) {
	for i := range st.Frameworks {
		fw := &st.Frameworks[i]
		if g.ts != nil {
			g.ts.framework(fw)
		}
		fname := domainFrag(fw.Name, g.opt.Spec)
		for j := range fw.Tasks {
			g.taskRecords(&fw.Tasks[j], fname, "")
		}
	}
}

// taskRecords emits a running task's records, in framework fname, unless
// its agent is unknown or it is unhealthy and only healthy tasks are
// named: every name it publishes, or only, when only is not empty, the
// one of its published names (see taskNames) that only is.
func (g *generator) taskRecords(t *Task, fname, only string) {
	slaveIPs, ok := g.slaveIPs[t.SlaveID]
	if !ok || (g.opt.HealthyOnly && t.Unhealthy) {
		return
	}
	if fname == "" {
		g.stats.Dropped++
		return
	}
	if g.ts != nil {
		g.ts.task(t)
	}
	g.stats.Tasks++
	g.task(t, fname, slaveIPs, only)
}

// taskIPs returns the addresses of the first IP source that has any.
func (g *generator) taskIPs(t *Task, slaveIPs []netip.Addr) []netip.Addr {
	for _, src := range g.opt.IPSources {
		var ips []netip.Addr
		switch src {
		case "netinfo":
			ips = t.NetInfoIPs
		case "mesos":
			ips = t.MesosIPs
		case "docker":
			ips = t.DockerIPs
		case "host":
			ips = slaveIPs
		}
		if len(ips) > 0 {
			return ips
		}
	}
	return nil
}

func (g *generator) task(t *Task, fname string, slaveIPs []netip.Addr, only string) {
	ips := g.taskIPs(t, slaveIPs)
	ports := 0
	for _, r := range t.Ports {
		ports += int(r.Hi) - int(r.Lo) + 1
	}
	if ports > MaxTaskPorts {
		g.stats.PortsCapped++
	}
	for _, name := range taskNames(t, g.opt.Spec) {
		if only == "" || name == only {
			g.taskNamed(t, name, fname, ips, slaveIPs)
		}
	}
}

// taskNames returns the names a task publishes its records under: its
// sanitized name, or with a DiscoveryInfo name, that name as given and
// sanitized. A name that sanitizes to nothing ("___", "日本語") is
// returned empty: it still gets its canonical names (-<hash>-<agent>) and
// SRV records (_._tcp...), as in Mesos-DNS's taskContextRecord; only the
// short name, which would have an empty label, is left out (see
// taskNamed).
func taskNames(t *Task, spec LabelFunc) []string {
	if t.Discovery == nil {
		return []string{spec(t.Name)}
	}
	// The DiscoveryInfo name replaces the task name, published both as
	// given and sanitized.
	clean := spec(t.Discovery.Name)
	var names []string
	// Mesos-DNS stores the raw name as given but lower-cases every
	// question (resolver.HandleMesos), so a raw name with an upper-case
	// letter is never answered there: it is not published here.
	if raw := t.Discovery.Name; raw != clean && rawNameOK(raw) && raw == strings.ToLower(raw) {
		names = append(names, raw)
	}
	return append(names, clean)
}

// Name parts that do not change.
var (
	slaveB     = []byte(".slave")
	tcpB       = []byte("._tcp.")
	udpB       = []byte("._udp.")
	protoNames = [2]string{"tcp", "udp"}
)

// taskNamed emits a task's records under one task name.
func (g *generator) taskNamed(t *Task, name, fname string, ips, slaveIPs []netip.Addr) {
	tail := g.tailB
	g.fname = append(append(g.fname[:0], '.'), fname...)
	dotFw := g.fname // ".fw"
	// name.fw and its canonical form name-hash-agent.fw.
	g.short = append(append(g.short[:0], name...), dotFw...)
	canon, ok := appendFitLast(g.canon[:0], name, t.Hash, t.SlaveID)
	short := g.short
	// An empty name makes a short name with an empty label, which no
	// question can ask (Mesos-DNS stores it, never answering it).
	hasShort := name != ""
	if !ok {
		// No canonical label fits (the agent ID's last field alone is
		// too long): only the short names are published, and no SRV
		// record, whose targets are canonical names.
		g.stats.Dropped++
		if !hasShort {
			return
		}
		for _, ip := range ips {
			g.addrName(g.name(short, tail), ip)
		}
		for _, ip := range slaveIPs {
			g.addrName(g.name(short, slaveB, tail), ip)
		}
		return
	}
	g.canon = append(canon, dotFw...)
	canon = g.canon
	for _, ip := range ips {
		if hasShort {
			g.addrName(g.name(short, tail), ip)
		}
		g.addrName(g.name(canon, tail), ip)
	}
	for _, ip := range slaveIPs {
		if hasShort {
			g.addrName(g.name(short, slaveB, tail), ip)
		}
		g.addrName(g.name(canon, slaveB, tail), ip)
	}

	g.srvLabel = appendFitFirst(g.srvLabel[:0], name)
	srv, fw := g.srvLabel, dotFw[1:]
	if len(t.Ports) > 0 {
		slaveTarget := g.out.str(g.name(canon, slaveB, tail))
		left := MaxTaskPorts
	ranges:
		for _, r := range t.Ports {
			for p := uint32(r.Lo); p <= uint32(r.Hi); p++ {
				if left == 0 {
					break ranges
				}
				left--
				port := uint16(p)
				g.srvName(g.name(srv, tcpB, fw, slaveB, tail), slaveTarget, port)
				g.srvName(g.name(srv, udpB, fw, slaveB, tail), slaveTarget, port)
				if t.Discovery == nil {
					g.srvName(g.name(srv, tcpB, fw, tail), slaveTarget, port)
					g.srvName(g.name(srv, udpB, fw, tail), slaveTarget, port)
				}
			}
		}
	}
	if t.Discovery == nil || len(t.Discovery.Ports) == 0 {
		return
	}
	target := g.out.str(g.name(canon, tail))
	for _, dp := range t.Discovery.Ports {
		// Port 0 is published as Mesos-DNS publishes it
		// (taskContextRecord); a number past 65535 is no port.
		if dp.Number < 0 || dp.Number > 65535 {
			continue
		}
		port := uint16(dp.Number)
		protos := protoNames[:]
		if p := g.opt.Spec(dp.Protocol); p != "" {
			protos = []string{p}
		}
		portName := g.opt.Spec(dp.Name)
		for _, proto := range protos {
			// _name._proto.fw.domain, and _port._name._proto.fw.domain.
			g.base = appendFitFirst(append(append(g.base[:0], srv...), '.'), proto)
			g.base = append(append(g.base, dotFw...), tail...)
			g.srvName(g.base, target, port)
			if portName != "" {
				g.label = append(appendFitFirst(g.label[:0], portName), '.')
				g.srvName(g.name(g.label, g.base), target, port)
			}
		}
	}
}

// leaderAddrPort reads the leader's host:port as State.Leader gives it;
// ok is false unless the host is an IP address and the port a number.
func leaderAddrPort(leader string) (ap netip.AddrPort, ok bool) {
	lh, lp, err := net.SplitHostPort(leader)
	if err != nil {
		return ap, false
	}
	ip, err := netip.ParseAddr(lh)
	if err != nil {
		return ap, false
	}
	port, err := strconv.ParseUint(lp, 10, 16)
	if err != nil {
		return ap, false
	}
	return netip.AddrPortFrom(ip.Unmap().WithZone(""), uint16(port)), true
}
