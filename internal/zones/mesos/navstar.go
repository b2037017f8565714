package mesos

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/spartan-dns/spartan/internal/zones"
)

// dcos-net's (Navstar's) DNS names, generated from the same state as the
// cluster zone. The rules are dcos-net's, function by function
// (dcos/dcos-net, apps/dcos_dns/src/dcos_dns_mesos.erl and
// apps/dcos_net/src/dcos_net_mesos_listener.erl):
//
//   - <task>.<framework>.agentip.dcos.thisdcos.directory: the address of
//     the task's agent (task_agentip);
//   - <task>.<framework>.containerip.dcos.thisdcos.directory: the task's
//     container addresses, A and AAAA (task_containerip);
//   - <task>.<framework>.autoip.dcos.thisdcos.directory: the agent's
//     address when a port of the task is mapped to a host port, else the
//     container addresses; the agent's when it has none (task_autoip);
//   - leader.dcos.thisdcos.directory and master.dcos.thisdcos.directory:
//     the leading master and the masters, as leader.<domain> and
//     master.<domain> (leader_record, master_records).
//
// Only TASK_RUNNING tasks are named (is_running). <task> is the task's
// DiscoveryInfo name when it has one, else its name (handle_task_name);
// both it and the framework's name become one label each through
// NavstarLabel (format_name). A task on an agent without an IPv4 address
// gets no names: dcos-net holds such a task back until its agent is known
// (add_task). Several tasks with one name share its records, one per
// distinct address. Every record has TTL 5 (?DCOS_DNS_TTL).
//
// mesos.thisdcos.directory is not built here: it is the cluster zone
// under another name (dcos_dns_mesos_dns copies every A, AAAA and SRV
// record of Mesos-DNS's zone there), served through an alias (see
// NavstarAliases). l4lb.thisdcos.directory (VIP names) is left out: its
// addresses mean something only with dcos-net's IPVS load balancer.

// Navstar zone names.
const (
	// NavstarOrigin is the zone of dcos-net's names.
	NavstarOrigin = "thisdcos.directory."
	// NavstarGlobal is answered as NavstarOrigin, with the question's
	// name kept (dcos_dns_router's rename of thisdcos.global).
	NavstarGlobal = "thisdcos.global."
	// NavstarMesos is the cluster zone under dcos-net's name.
	NavstarMesos = "mesos." + NavstarOrigin
	// navstarTasks is the domain of the task names.
	navstarTasks = "dcos." + NavstarOrigin
	// NavstarTTL is the TTL of every record dcos-net serves.
	NavstarTTL = 5
)

// navstarSOA is dcos-net's SOA (dcos_dns:soa_record), whose TTL also goes
// to the NS record here: the zone has one record TTL.
var navstarSOA = zones.SOA{
	Mname: "ns.spartan.", Rname: "support.mesosphere.com.",
	Refresh: 60, Retry: 180, Expire: 86400, Minttl: 1, TTL: NavstarTTL,
}

// navstarNS is the zone's name server, as in dcos_dns:ns_record.
const navstarNS = "ns.spartan."

// BuildNavstarZone generates the thisdcos.directory zone for st.
func BuildNavstarZone(st *State, opt *Options, serial uint32) *zones.Zone {
	z, _ := buildNavstar(st, opt, serial)
	return z
}

// buildNavstar is BuildNavstarZone, also returning the agents' addresses
// it found.
func buildNavstar(st *State, opt *Options, serial uint32) (*zones.Zone, map[string]netip.Addr) {
	b := newNavBuilder()
	// Sized for a family of names a task, as if no two tasks shared a
	// name: instances of an app do, but a table that grows as it fills
	// costs more than one cleared once.
	b.GrowFanout(st.RunningTasks())
	g := navGen{b: b, opt: opt, agents: make(map[string]netip.Addr, len(st.Slaves))}
	g.masters(st.Leader)
	// The agents' IDs are keyed as copies in one string: a task's lookup
	// then reads its key's bytes from a dense block rather than from
	// wherever the decoder left each agent.
	size := 0
	for i := range st.Slaves {
		size += len(st.Slaves[i].ID)
	}
	var ids strings.Builder
	ids.Grow(size)
	for i := range st.Slaves {
		ids.WriteString(st.Slaves[i].ID)
	}
	all, off := ids.String(), 0
	for i := range st.Slaves {
		s := &st.Slaves[i]
		id := all[off : off+len(s.ID)]
		off += len(s.ID)
		if ip, ok := g.agentIP(s.Hostname); ok {
			g.agents[id] = ip
		}
	}
	for i := range st.Frameworks {
		fw := &st.Frameworks[i]
		g.fw = AppendNavstarLabel(g.fw[:0], fw.Name)
		if len(g.fw) == 0 {
			continue
		}
		for j := range fw.Tasks {
			g.task(&fw.Tasks[j])
		}
	}
	return b.Build(serial), g.agents
}

// newNavBuilder starts a thisdcos.directory zone. A task's three names
// differ only in their third label: they are stored as one family (see
// zones.Builder.Fanout), so the build pays one probe of the name table
// per task rather than three, and serving answers the same.
func newNavBuilder() *zones.Builder {
	b := zones.NewBuilder(NavstarOrigin, navstarSOA, []string{navstarNS})
	var tails [navKinds]string
	for kind, t := range navTails {
		tails[kind] = string(t)
	}
	b.Fanout(tails[:]...)
	return b
}

// EmptyNavstarZone is the thisdcos.directory zone before any state was
// read: SOA and NS.
func EmptyNavstarZone(serial uint32) *zones.Zone {
	return newNavBuilder().Build(serial)
}

// addrSink takes address records: a zones.Builder, or a zones.Patch.
type addrSink interface {
	AddAddr(name []byte, ip netip.Addr, ttl uint32) bool
}

type navGen struct {
	b      addrSink
	opt    *Options
	agents map[string]netip.Addr
	// Buffers names are assembled in.
	fw, name []byte
}

// agentIP is the agent's address as dcos-net finds it
// (handle_agent_hostname): its host name as an IPv4 address, or the first
// IPv4 address it resolves to.
func (g *navGen) agentIP(host string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		return a, a.Is4()
	}
	if host == "" || g.opt.Resolve == nil {
		return netip.Addr{}, false
	}
	for _, a := range g.opt.Resolve(host) {
		if a = a.Unmap(); a.Is4() {
			return a.WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// masters: leader.dcos.thisdcos.directory is the leader, and
// master.dcos.thisdcos.directory the leader and every configured master,
// as leader.<domain> and master.<domain> are.
func (g *navGen) masters(leader string) {
	ap, ok := leaderAddrPort(leader)
	if !ok {
		return
	}
	lip := ap.Addr()
	g.b.AddAddr([]byte("leader."+navstarTasks), lip, NavstarTTL)
	all := []byte("master." + navstarTasks)
	g.b.AddAddr(all, lip, NavstarTTL)
	for _, m := range g.opt.Masters {
		if ap, err := netip.ParseAddrPort(m); err == nil {
			g.b.AddAddr(all, ap.Addr().Unmap().WithZone(""), NavstarTTL)
		}
	}
}

// The kinds of task names, and their tails.
const (
	agentIP = iota
	containerIP
	autoIP
	navKinds
)

var navTails = [navKinds][]byte{
	[]byte(".agentip." + navstarTasks),
	[]byte(".containerip." + navstarTasks),
	[]byte(".autoip." + navstarTasks),
}

// task adds a running task's names.
func (g *navGen) task(t *Task) {
	agent, ok := g.agents[t.SlaveID]
	if !ok {
		return
	}
	name := t.Name
	if t.Discovery != nil {
		name = t.Discovery.Name
	}
	// The names are assembled in g.name, kept so its capacity is reused
	// from task to task: <task>.<fw> once, then each kind's tail.
	g.name = AppendNavstarLabel(g.name[:0], name)
	if len(g.name) == 0 {
		return
	}
	g.name = append(append(g.name, '.'), g.fw...)
	base := len(g.name)
	for kind, tail := range navTails {
		if kind == containerIP && len(t.ContainerIPs) == 0 {
			continue
		}
		g.name = append(g.name[:base], tail...)
		if kind == agentIP || (kind == autoIP && (len(t.ContainerIPs) == 0 || t.HostPorts)) {
			g.b.AddAddr(g.name, agent, NavstarTTL)
			continue
		}
		for _, ip := range t.ContainerIPs {
			g.b.AddAddr(g.name, ip, NavstarTTL)
		}
	}
}

// NavstarLabel turns a name into one DNS label as dcos-net does
// (mesos_state:label): lower-cased; characters other than [a-z0-9]
// dropped up to the first that is one; '-', '_' and '.' then become '-'
// and other characters are dropped; at 63 characters with more to come,
// trailing '-' are trimmed and only letters and digits are added until it
// is 63 long again; trailing '-' are trimmed at the end.
func NavstarLabel(name string) string { return string(AppendNavstarLabel(nil, name)) }

// AppendNavstarLabel appends NavstarLabel(name) to dst.
func AppendNavstarLabel(dst []byte, name string) []byte {
	const (
		start = iota
		middle
		terminate
	)
	base := len(dst)
	state := start
	trim := func() {
		for len(dst) > base && dst[len(dst)-1] == '-' {
			dst = dst[:len(dst)-1]
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if state == start {
			if !alnum {
				continue
			}
			state = middle
		}
		if state == middle && len(dst)-base > maxLabel-1 {
			trim()
			state = terminate
		}
		switch {
		case state == terminate && len(dst)-base == maxLabel:
			trim()
			return dst
		case alnum:
			dst = append(dst, c)
		case state == middle && (c == '-' || c == '_' || c == '.'):
			dst = append(dst, '-')
		}
	}
	trim()
	return dst
}

// NavstarAliases are the names the master's authority answers as other
// zones: thisdcos.global as thisdcos.directory (dcos_dns_router), and
// mesos.thisdcos.directory as the cluster zone at domain, with TTL 5 and
// SRV priority 1 (dcos_dns_mesos_dns copies the records with
// dcos_dns:dns_record and dcos_dns:srv_record).
func NavstarAliases(domain string) []zones.Alias {
	return []zones.Alias{
		{From: NavstarGlobal, To: NavstarOrigin},
		{From: NavstarMesos, To: dns.CanonicalName(domain), Rewrite: func(rr dns.RR) {
			rr.Header().Ttl = NavstarTTL
			if srv, ok := rr.(*dns.SRV); ok {
				srv.Priority = 1
			}
		}},
	}
}
