package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/resolvconf"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// TestMain removes the binaries the tests build.
func TestMain(m *testing.M) { os.Exit(testsupport.Main(m)) }

// The topology: one Ethernet segment with every node on it. Addresses come
// from the documentation ranges only; every one of them lives inside a
// namespace this test creates.
const (
	mesosAddr = "192.0.2.5:5050" // the fake Mesos master
	proxyIP   = "169.254.20.10"  // each agent's proxy, on its loopback

	statePath  = "../testdata/mesos-dns-fake-state.json"
	goldenPath = "../testdata/mesos-dns-fake-state.records.txt"

	// The agents' cache: answers expire after a second, so failover steps
	// reach the masters, and expired entries are served stale for
	// staleMaxAge with the TTL staleTTL, which fresh answers never carry.
	staleTTL    = 30
	staleMaxAge = 10 * time.Second

	// deadline bounds every wait for something to happen (never asserted
	// as a duration: it only keeps a broken build from hanging).
	deadline = 20 * time.Second

	// mesosDelay is how long after the masters' spartan the Mesos master
	// starts answering: a cluster booting.
	mesosDelay = 2 * time.Second

	// The container on the second agent: a subnet of its own behind the
	// agent's bridge, carved out of a documentation range no node
	// address is in.
	containerSubnet  = "203.0.113.192/28"
	containerGateway = "203.0.113.193/28"
	containerAddr    = "203.0.113.194/28"
)

func masterIP(i int) string   { return fmt.Sprintf("192.0.2.%d", 11+i) }
func agentIP(i int) string    { return fmt.Sprintf("192.0.2.%d", 21+i) }
func resolverIP(i int) string { return fmt.Sprintf("203.0.113.%d", 53+i) }

// resolverAnswer is the address resolver i gives every external name, so
// a test can tell which resolver an answer came from.
func resolverAnswer(i int) string { return fmt.Sprintf("203.0.113.%d", 81+i) }

// externalDomain is the domain the external resolvers answer for.
const externalDomain = "example.org."

type master struct {
	ns   *testsupport.NetNS
	link *testsupport.Link
	ip   string
	proc *testsupport.Process
}

type resolver struct {
	ns     *testsupport.NetNS
	link   *testsupport.Link
	ip     string
	answer string
	up     *testsupport.Upstream
}

type agent struct {
	name       string
	ns         *testsupport.NetNS
	config     string
	resolvConf string
	proxy      *testsupport.Process
	watchdog   *testsupport.Process
}

// bootRecord is what the agents saw while the cluster booted: the
// masters' spartan first, the Mesos master mesosDelay later.
type bootRecord struct {
	// gap lists the answers the agents got before the Mesos master
	// started ("agent name rcode").
	gap []string
	// apex lists the zone apexes' SOA answers in that time ("agent
	// zone SOA rcode records").
	apex []string
	// wrong lists the answers after it started, until the names resolved
	// on every agent, that were neither SERVFAIL nor the names' records.
	wrong []string
	// unresolved lists the names (by agent) still not resolved at the
	// deadline; polls is the fewest state polls a master had made when
	// the watch ended.
	unresolved []string
	polls      int
}

type cluster struct {
	// top is the whole test: processes started by a step live as long as
	// the cluster, not as the step's subtest.
	top       *testing.T
	spartan   string // binary
	mesos     *testsupport.FakeMesosMaster
	state     []byte
	masters   []*master
	resolvers []*resolver
	agents    []*agent
	// leaks counts cluster-domain and DC/OS queries that reached an
	// external resolver: it must stay 0 (they only go to masters).
	leaks atomic.Int64
	boot  bootRecord
}

// TestCluster runs three masters, two external resolvers and two agents,
// each in its own network namespace on one bridge, boots them as a
// cluster boots (the masters' spartan before the Mesos master), and checks
// from the agents and from a container behind the second agent's bridge,
// with dig and glibc's getent, that cluster, DC/OS and external names
// resolve and keep resolving while masters stop, an external resolver is
// blackholed, the state changes, the agent's proxy is killed and
// restarted, and every master is gone. The steps build on each other
// (each leaves the cluster as the next expects it), so they run in order
// and a failed step ends the test.
func TestCluster(t *testing.T) {
	start := time.Now()
	c := startCluster(t)
	t.Logf("cluster up in %v", time.Since(start).Round(time.Millisecond))

	g := loadGolden(t)
	batches := g.batches(4)

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"boot: no NXDOMAIN before the Mesos master answers", c.stepBoot},
		{"names resolve", func(t *testing.T) { c.stepResolve(t, g, batches[0]) }},
		{"DC/OS names resolve", c.checkDCOS},
		{"container resolves through the agent", c.stepContainer},
		{"one master stopped", func(t *testing.T) { c.stepMasterDown(t, g, batches[1], 0) }},
		{"two masters stopped", func(t *testing.T) { c.stepMasterDown(t, g, batches[2], 1) }},
		{"external resolver blackholed", c.stepResolverBlackholed},
		{"task added", c.stepTaskAdded},
		{"proxy killed and restarted", c.stepProxyKilled},
		{"all masters down: stale", func(t *testing.T) { c.stepAllMastersDown(t, g, batches[3]) }},
	}
	for _, s := range steps {
		began := time.Now()
		ok := t.Run(s.name, s.run)
		t.Logf("step %q took %v", s.name, time.Since(began).Round(time.Millisecond))
		if !ok {
			t.FailNow()
		}
	}
	require.Zero(t, c.leaks.Load(), "cluster-domain queries reached the external resolvers")
}

// startCluster builds the topology and starts every process, waiting until
// each master serves the zone, each proxy answers and each watchdog has
// pointed its resolv.conf at the proxy.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	seg := testsupport.NewSegment(t) // skips when not root or without ip netns
	// The real clients are part of what is tested: missing, they fail the
	// test instead of skipping it.
	for _, tool := range []string{"dig", "getent"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "%s is needed (apt-get install dnsutils libc-bin)", tool)
	}
	c := &cluster{
		top:     t,
		spartan: testsupport.BuildBinary(t, "github.com/spartan-dns/spartan/cmd/spartan"),
	}
	watchdogBin := testsupport.BuildBinary(t, "github.com/spartan-dns/spartan/cmd/watchdog")
	var err error
	fixture, err := os.ReadFile(statePath)
	require.NoError(t, err)
	c.state = withDCOSTasks(t, fixture)

	// The Mesos master's node is up from the start; its master process
	// starts mesosDelay after the masters' spartan (bootCluster).
	mesosNS := testsupport.NewNetNS(t)
	seg.Attach(t, mesosNS, "eth0", "192.0.2.5/24")

	var upstreams, masterDNS []string
	for i := range 2 {
		r := &resolver{ns: testsupport.NewNetNS(t), ip: resolverIP(i), answer: resolverAnswer(i)}
		r.link = seg.Attach(t, r.ns, "eth0", r.ip+"/24")
		r.ns.Do(t, func() {
			r.up = testsupport.StartUpstream(t, testsupport.WithAddr(r.ip+":53"),
				testsupport.WithHandler(externalHandler(netip.MustParseAddr(r.answer), &c.leaks)))
		})
		c.resolvers = append(c.resolvers, r)
		upstreams = append(upstreams, r.ip+":53")
	}
	for i := range 3 {
		masterDNS = append(masterDNS, masterIP(i)+":61053")
	}

	for i := range 3 {
		m := &master{ns: testsupport.NewNetNS(t), ip: masterIP(i)}
		m.link = seg.Attach(t, m.ns, "eth0", m.ip+"/24", fmt.Sprintf("203.0.113.%d/24", 11+i))
		cfg := writeConfig(t, fmt.Sprintf("master%d.json", i), map[string]any{
			// Masters run the node-local proxy too, on their loopback.
			"listen":    []string{"127.0.0.1:53"},
			"upstreams": upstreams,
			"masters":   masterDNS,
			"metrics":   "",
			"master": map[string]any{
				"listen":         []string{m.ip + ":61053"},
				"masters":        []string{mesosAddr},
				"domain":         "mesos.",
				"refreshSeconds": 1,
				"http":           "127.0.0.1:8123",
				// The cluster lives in a documentation range, outside
				// the default client networks.
				"allowNets": []string{"192.0.2.0/24"},
			},
		})
		m.proc = m.ns.Start(t, c.spartan, "-config", cfg)
		c.masters = append(c.masters, m)
	}
	mastersStarted := time.Now()

	for i := range 2 {
		a := &agent{name: fmt.Sprintf("agent%d", i), ns: testsupport.NewNetNS(t)}
		seg.Attach(t, a.ns, "eth0", agentIP(i)+"/24", fmt.Sprintf("203.0.113.%d/24", 21+i))
		a.ns.AddAddr(t, proxyIP+"/32")
		a.config = writeConfig(t, a.name+".json", map[string]any{
			"listen":    []string{proxyIP + ":53"},
			"upstreams": upstreams,
			// The masters serve the cluster domain and the DC/OS
			// domains; the node's own address (thisnode) is found from
			// the route to the first of them.
			"masters": masterDNS,
			// A container runtime's subnet must be a client network.
			"allowNets":   append(config.DefaultAllowNets(), containerSubnet),
			"raceTimeout": "1s",
			"metrics":     "",
			"cache": map[string]any{
				"maxTTL":                "1s",
				"clusterNegativeMaxTTL": "1s",
				"negativeMaxTTL":        "1s",
				"staleMaxAge":           staleMaxAge.String(),
				"staleTTL":              fmt.Sprintf("%ds", staleTTL),
				"clientTimeout":         "500ms",
				"prefetchHits":          0,
			},
		})
		// The node's resolv.conf before spartan: the external resolvers.
		a.resolvConf = a.ns.EtcFile(t, "resolv.conf", []byte(fmt.Sprintf(
			"# %s before spartan\nnameserver %s\nnameserver %s\n", a.name, resolverIP(0), resolverIP(1))))
		a.proxy = c.startProxy(t, a)
		a.watchdog = a.ns.Start(t, watchdogBin, "-resolv-conf", a.resolvConf, "-proxy", proxyIP,
			"-upstreams", resolverIP(0)+","+resolverIP(1), "-interval", "200ms", "-timeout", "500ms",
			"-fail-after", "2", "-recover-after", "2")
		c.agents = append(c.agents, a)
	}

	began := time.Now()
	c.boot = c.bootMesos(t, mesosNS, mastersStarted)
	t.Logf("agents up %v after the masters' spartan; boot watched for %v",
		began.Sub(mastersStarted).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

	// Every master serves the zone authoritatively, seen from an agent.
	for _, m := range c.masters {
		waitFor(t, "master "+m.ip+" serving chronos.marathon.mesos", func() error {
			out, err := c.agents[0].ns.Dig(t, m.ip+":61053", "chronos.marathon.mesos", "A")
			if err != nil {
				return err
			}
			r, err := testsupport.ParseDig(out)
			if err != nil {
				return err
			}
			if r.Rcode != "NOERROR" || len(r.Answer) == 0 || !r.HasFlag("aa") {
				return fmt.Errorf("not an authoritative answer yet:\n%s", out)
			}
			return nil
		})
	}
	for _, a := range c.agents {
		waitNameservers(t, a.resolvConf, proxyIP)
	}
	return c
}

// bootNames are the names the boot is watched with, and their addresses
// once the masters have read a state: a cluster name and a DC/OS one.
var bootNames = []struct{ name, addr string }{
	{"chronos.marathon.mesos", "1.2.3.11"},
	{"e2e-cni.marathon.autoip.dcos.thisdcos.directory", "198.51.100.7"},
}

// bootMesos watches the agents resolve bootNames (and the zone apexes'
// SOA) until mesosDelay after the masters' spartan started, then starts
// the Mesos master and watches until every name resolves on every agent.
// It records what it saw for stepBoot instead of failing, so that the
// other steps still run when the boot goes wrong.
func (c *cluster) bootMesos(t *testing.T, mesosNS *testsupport.NetNS, mastersStarted time.Time) bootRecord {
	t.Helper()
	// The masters' spartan serves (the zone apex, with no state yet)
	// before the watch starts, so that every answer in the gap is the
	// masters' own.
	for _, m := range c.masters {
		waitFor(t, "master "+m.ip+" answering the apex before any state", func() error {
			out, err := c.agents[0].ns.Dig(t, m.ip+":61053", "mesos.", "SOA")
			if err != nil {
				return err
			}
			r, err := testsupport.ParseDig(out)
			if err != nil {
				return err
			}
			if r.Rcode != "NOERROR" || len(r.Answer) != 1 {
				return fmt.Errorf("no SOA yet:\n%s", out)
			}
			return nil
		})
	}
	var rec bootRecord
	for first := true; first || time.Since(mastersStarted) < mesosDelay; first = false {
		for _, a := range c.agents {
			for _, n := range bootNames {
				r := query(t, a.ns, proxyIP, n.name, "A")
				rec.gap = append(rec.gap, fmt.Sprintf("%s %s A %s", a.name, n.name, r.Rcode))
			}
			for _, apex := range []string{"mesos.", "thisdcos.directory."} {
				r := query(t, a.ns, proxyIP, apex, "SOA")
				rec.apex = append(rec.apex, fmt.Sprintf("%s %s SOA %s %d", a.name, apex, r.Rcode, len(r.Answer)))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	mesosNS.Do(t, func() { c.mesos = testsupport.NewFakeMesosMasterAt(t, mesosAddr, c.state) })
	end := time.Now().Add(deadline)
	type probe struct {
		a          *agent
		name, addr string
	}
	var pending []probe
	for _, a := range c.agents {
		for _, n := range bootNames {
			pending = append(pending, probe{a, n.name, n.addr})
		}
	}
	for len(pending) > 0 && time.Now().Before(end) {
		pending = slices.DeleteFunc(pending, func(p probe) bool {
			r := query(t, p.a.ns, proxyIP, p.name, "A")
			if r.Rcode == "NOERROR" && slices.Equal(values(r.Answer), []string{p.addr}) {
				return true
			}
			if r.Rcode != "SERVFAIL" {
				rec.wrong = append(rec.wrong, fmt.Sprintf("%s %s A %s %v", p.a.name, p.name, r.Rcode, values(r.Answer)))
			}
			return false
		})
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range pending {
		rec.unresolved = append(rec.unresolved, p.a.name+" "+p.name)
	}
	rec.polls = -1
	for _, m := range c.masters {
		if n := c.mesos.StatePolls(m.ip); rec.polls < 0 || n < rec.polls {
			rec.polls = n
		}
	}
	return rec
}

// stepBoot: while the masters' spartan has never read a state (the Mesos
// master is not up yet) the agents get SERVFAIL for cluster and DC/OS
// names, never NXDOMAIN, which they would cache for
// clusterNegativeMaxTTL, while the zone apexes' SOA is answered; once the
// Mesos master answers, the names resolve on every agent within one
// refresh: before any master has polled the state a third time (its first
// successful poll builds the zone, the agents' SERVFAIL is cached for at
// most servFailTTL, one refresh interval).
func (c *cluster) stepBoot(t *testing.T) {
	rec := c.boot
	t.Logf("boot: %d answers before the Mesos master started, %d wrong ones after, %d names unresolved, %d polls",
		len(rec.gap), len(rec.wrong), len(rec.unresolved), rec.polls)
	require.NotEmpty(t, rec.gap)
	for _, g := range rec.gap {
		require.True(t, strings.HasSuffix(g, " SERVFAIL"), "before the Mesos master started: %v", rec.gap)
	}
	for _, a := range rec.apex {
		require.True(t, strings.HasSuffix(a, " NOERROR 1"), "apex SOA before the Mesos master started: %v", rec.apex)
	}
	require.Empty(t, rec.wrong, "answers after the Mesos master started, before the names resolved everywhere")
	require.Empty(t, rec.unresolved, "names that did not resolve after the Mesos master started")
	require.Less(t, rec.polls, 3, "the names resolved everywhere only after every master had polled the state %d times", rec.polls)
}

// startProxy starts the agent's proxy and waits until it answers the
// health-check name.
func (c *cluster) startProxy(t testing.TB, a *agent) *testsupport.Process {
	t.Helper()
	p := a.ns.Start(c.top, c.spartan, "-config", a.config)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "spartan serving"), "proxy of %s did not start", a.name)
	r := query(t, a.ns, proxyIP, "ready.spartan", "A")
	require.Equal(t, "NOERROR", r.Rcode)
	require.Equal(t, []string{"127.0.0.1"}, values(r.Answer))
	return p
}

// stepResolve: cluster names (A, AAAA, SRV, as Mesos-DNS generates them)
// and external names resolve on both agents, with dig over UDP and TCP and
// with glibc.
func (c *cluster) stepResolve(t *testing.T, g golden, batch []rrKey) {
	c.checkGolden(t, g, batch)
	for i, a := range c.agents {
		r := query(t, a.ns, proxyIP, "chronos.marathon.mesos", "A")
		require.Equal(t, "NOERROR", r.Rcode)
		require.Equal(t, []string{"1.2.3.11"}, values(r.Answer))
		r = query(t, a.ns, proxyIP, "+tcp", "_chronos._tcp.marathon.mesos", "SRV")
		require.Equal(t, "NOERROR", r.Rcode)
		require.Equal(t, []string{"chronos-rx8q6-0.marathon.slave.mesos.:31332"}, values(r.Answer))
		// The leader is the fake Mesos master the masters poll.
		r = query(t, a.ns, proxyIP, "leader.mesos", "A")
		require.Equal(t, []string{"192.0.2.5"}, values(r.Answer))
		r = query(t, a.ns, proxyIP, "ns1.mesos", "A")
		require.Len(t, r.Answer, 1)
		require.Contains(t, []string{masterIP(0), masterIP(1), masterIP(2)}, values(r.Answer)[0])

		c.checkExternal(t, a, "www-"+a.name, resolverAnswer(0), resolverAnswer(1))

		// The node's own name, answered by its proxy: the address of the
		// interface that routes to the first master, not the proxy's.
		for _, name := range []string{"thisnode.thisdcos.directory", "ThisNode.ThisDCOS.Global"} {
			r = query(t, a.ns, proxyIP, name, "A")
			require.Equal(t, "NOERROR", r.Rcode)
			require.Equal(t, []string{agentIP(i)}, values(r.Answer), "%s from %s", name, a.name)
			out, err := a.ns.Getent(t, name)
			require.NoError(t, err)
			require.Equal(t, []string{agentIP(i)}, getentAddrs(out))
		}

		out, err := a.ns.Getent(t, "chronos.marathon.mesos")
		require.NoError(t, err)
		require.Equal(t, []string{"1.2.3.11"}, getentAddrs(out))
		out, err = a.ns.Getent(t, "liquor-store.marathon.mesos")
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"1.2.3.11", "1.2.3.12"}, getentAddrs(out))
		out, err = a.ns.Getent(t, "glibc-"+a.name+"."+strings.TrimSuffix(externalDomain, "."))
		require.NoError(t, err)
		require.Subset(t, []string{resolverAnswer(0), resolverAnswer(1)}, getentAddrs(out))
	}
}

// stepMasterDown stops master i and checks that cluster names the agents
// have never cached still resolve, and that absent names get NXDOMAIN from
// the zone's authority. Master 0 stops cleanly (SIGTERM: its address
// answers with ICMP port unreachable); master 1's link goes down (a dead
// host: its queries are never answered).
func (c *cluster) stepMasterDown(t *testing.T, g golden, batch []rrKey, i int) {
	m := c.masters[i]
	if i == 0 {
		require.NoError(t, m.proc.Signal(syscall.SIGTERM))
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		code, err := m.proc.Wait(ctx)
		require.NoError(t, err)
		require.Zero(t, code, "master exit status after SIGTERM")
	} else {
		m.link.Down(t)
	}
	c.checkGolden(t, g, batch)
	for j, a := range c.agents {
		name := fmt.Sprintf("absent-%d-%d.marathon.mesos", i, j)
		r := query(t, a.ns, proxyIP, name, "A")
		require.Equal(t, "NXDOMAIN", r.Rcode, "%s from %s", name, a.name)
		require.Len(t, r.Authority, 1)
		require.Equal(t, "mesos.", r.Authority[0].Header().Name)
		require.Equal(t, dns.TypeSOA, r.Authority[0].Header().Rrtype)
	}
	c.checkDCOS(t)
}

// stepResolverBlackholed: with one external resolver's link down, external
// names the agents have never asked keep resolving (from the other one)
// without a client timeout; when it comes back it gets queries again.
func (c *cluster) stepResolverBlackholed(t *testing.T) {
	dead, alive := c.resolvers[0], c.resolvers[1]
	dead.link.Down(t)
	for n := range 5 {
		for _, a := range c.agents {
			c.checkExternal(t, a, fmt.Sprintf("blackhole-%d-%s", n, a.name), alive.answer)
		}
	}
	out, err := c.agents[0].ns.Getent(t, "glibc-blackhole."+strings.TrimSuffix(externalDomain, "."))
	require.NoError(t, err)
	require.Equal(t, []string{alive.answer}, getentAddrs(out))

	dead.link.Up(t)
	before := dead.up.Queries()
	n := 0
	waitFor(t, "the recovered resolver receiving queries again", func() error {
		n++
		c.checkExternal(t, c.agents[0], fmt.Sprintf("recovered-%d", n), dead.answer, alive.answer)
		if dead.up.Queries() == before {
			return fmt.Errorf("%s has received no query since it came back", dead.ip)
		}
		return nil
	})
}

// stepTaskAdded: a task added to the Mesos state is in the remaining
// master's zone as soon as that master has polled the new state, and
// resolves on every agent once the negative answer the agent cached for it
// has expired; before, it is NXDOMAIN. The bounds are counted in the
// master's polls of the fake Mesos master, not in time.
func (c *cluster) stepTaskAdded(t *testing.T) {
	const name = "e2e-new-task.marathon.mesos"
	want := []string{"192.0.2.200"}
	m := c.masters[2] // the others are stopped or cut off
	for _, a := range c.agents {
		r := query(t, a.ns, proxyIP, name, "A")
		require.Equal(t, "NXDOMAIN", r.Rcode, "%s before the task exists", name)
	}
	c.mesos.SetState(t, withNewTask(t, c.state))
	// Polls counted from here on are answered with the new state. The
	// master polls once at a time, so by its second such poll it serves
	// the zone built from the first.
	changed := c.mesos.StatePolls(m.ip)
	waitFor(t, "master "+m.ip+" polling the new state twice", func() error {
		if n := c.mesos.StatePolls(m.ip) - changed; n < 2 {
			return fmt.Errorf("%d polls since the change", n)
		}
		return nil
	})
	out, err := c.agents[0].ns.Dig(t, m.ip+":61053", name, "A")
	require.NoError(t, err)
	r, err := testsupport.ParseDig(out)
	require.NoError(t, err)
	require.Equal(t, "NOERROR", r.Rcode, out)
	require.True(t, r.HasFlag("aa"), out)
	require.Equal(t, want, values(r.Answer), out)

	// An agent keeps the NXDOMAIN it cached for at most
	// clusterNegativeMaxTTL (1s), one refresh interval: by the master's
	// fourth poll since the change (two intervals after the zone had the
	// task) every agent must answer with the task.
	for _, a := range c.agents {
		waitFor(t, name+" on "+a.name, func() error {
			polls := c.mesos.StatePolls(m.ip) - changed
			r := query(t, a.ns, proxyIP, name, "A")
			if r.Rcode == "NOERROR" && slices.Equal(values(r.Answer), want) {
				return nil
			}
			require.Less(t, polls, 4, "%s on %s: still %s %v after %d polls of the new state", name, a.name, r.Rcode, r.Answer, polls)
			return fmt.Errorf("%s A: %s %v", name, r.Rcode, r.Answer)
		})
		r := query(t, a.ns, proxyIP, "_e2e-new-task._tcp.marathon.mesos", "SRV")
		require.Equal(t, "NOERROR", r.Rcode)
		require.Len(t, r.Answer, 1)
		srv := r.Answer[0].(*dns.SRV)
		require.Equal(t, uint16(31900), srv.Port)
		require.True(t, strings.HasPrefix(srv.Target, "e2e-new-task-") && strings.HasSuffix(srv.Target, ".marathon.slave.mesos."),
			"SRV target %s", srv.Target)
		out, err := a.ns.Getent(t, name)
		require.NoError(t, err)
		require.Equal(t, []string{"192.0.2.200"}, getentAddrs(out))
	}
}

// stepProxyKilled: SIGKILL the first agent's proxy; its watchdog points
// resolv.conf at the external resolvers and glibc keeps resolving external
// names; the other agent is untouched. Started again, the proxy gets
// resolv.conf back.
func (c *cluster) stepProxyKilled(t *testing.T) {
	a, other := c.agents[0], c.agents[1]
	require.NoError(t, a.proxy.Signal(syscall.SIGKILL))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	_, err := a.proxy.Wait(ctx)
	require.NoError(t, err)

	waitNameservers(t, a.resolvConf, resolverIP(0), resolverIP(1))
	for n := range 3 {
		out, err := a.ns.Getent(t, fmt.Sprintf("glibc-noproxy-%d.%s", n, strings.TrimSuffix(externalDomain, ".")))
		require.NoError(t, err, "getent with the proxy dead")
		require.Subset(t, []string{resolverAnswer(0), resolverAnswer(1)}, getentAddrs(out))
	}
	require.Equal(t, []netip.Addr{netip.MustParseAddr(proxyIP)}, nameservers(t, other.resolvConf),
		"the other agent's resolv.conf must not change")

	a.proxy = c.startProxy(t, a)
	waitNameservers(t, a.resolvConf, proxyIP)
	out, err := a.ns.Getent(t, "chronos.marathon.mesos")
	require.NoError(t, err)
	require.Equal(t, []string{"1.2.3.11"}, getentAddrs(out))
	out, err = a.ns.Getent(t, "glibc-proxyback."+strings.TrimSuffix(externalDomain, "."))
	require.NoError(t, err)
	require.Subset(t, []string{resolverAnswer(0), resolverAnswer(1)}, getentAddrs(out))
}

// stepAllMastersDown: names cached on the agent are served stale (TTL
// staleTTL, the right data) once the last master is gone and they have
// expired, without a client timeout, and only for staleMaxAge: then the
// client gets SERVFAIL, as it does at once for a name never cached.
func (c *cluster) stepAllMastersDown(t *testing.T, g golden, batch []rrKey) {
	a := c.agents[0]
	probes := batch[:4]
	for _, k := range probes { // cache them, fresh from the last master
		r := query(t, a.ns, proxyIP, k.name, dns.TypeToString[k.qtype])
		require.Equal(t, "NOERROR", r.Rcode, "%s %s", k.name, dns.TypeToString[k.qtype])
		require.Equal(t, g[k], values(r.Answer))
	}
	last := c.masters[2]
	require.NoError(t, last.proc.Signal(syscall.SIGKILL))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	_, err := last.proc.Wait(ctx)
	require.NoError(t, err)

	// Within the window: every answer is the cached data, fresh until the
	// entry expires, stale afterwards; each probe must be seen stale.
	stale := map[rrKey]bool{}
	waitFor(t, "stale answers for every probe", func() error {
		for _, k := range probes {
			r := query(t, a.ns, proxyIP, k.name, dns.TypeToString[k.qtype])
			require.Equal(t, "NOERROR", r.Rcode, "%s %s with every master down, inside the stale window", k.name, dns.TypeToString[k.qtype])
			require.Equal(t, g[k], values(r.Answer))
			if r.Answer[0].Header().Ttl == staleTTL {
				stale[k] = true
			}
		}
		if len(stale) < len(probes) {
			return fmt.Errorf("stale so far: %v", stale)
		}
		return nil
	})

	r := query(t, a.ns, proxyIP, "never-cached.marathon.mesos", "A")
	require.Equal(t, "SERVFAIL", r.Rcode, "a cluster name never cached, with every master down")

	// After the window: SERVFAIL, still promptly (no client timeout).
	k := probes[0]
	waitFor(t, "the stale window to close", func() error {
		r := query(t, a.ns, proxyIP, k.name, dns.TypeToString[k.qtype])
		if r.Rcode == "NOERROR" {
			require.Equal(t, g[k], values(r.Answer))
			return fmt.Errorf("%s still served (TTL %d)", k.name, r.Answer[0].Header().Ttl)
		}
		require.Equal(t, "SERVFAIL", r.Rcode)
		return nil
	})
}

// checkGolden queries every key, alternating agents and transports, and
// compares the answers with the Mesos-DNS golden record set.
func (c *cluster) checkGolden(t *testing.T, g golden, batch []rrKey) {
	t.Helper()
	require.NotEmpty(t, batch)
	for n, k := range batch {
		a := c.agents[n%len(c.agents)]
		args := []string{k.name, dns.TypeToString[k.qtype]}
		if n%3 == 2 {
			args = append(args, "+tcp")
		}
		r := query(t, a.ns, proxyIP, args...)
		require.Equal(t, "NOERROR", r.Rcode, "%s %s from %s", k.name, dns.TypeToString[k.qtype], a.name)
		require.Equal(t, g[k], values(r.Answer), "%s %s from %s", k.name, dns.TypeToString[k.qtype], a.name)
	}
}

// checkExternal resolves label.example.org on the agent with dig and
// requires one of the allowed resolvers' answers.
func (c *cluster) checkExternal(t testing.TB, a *agent, label string, allowed ...string) {
	t.Helper()
	name := label + "." + externalDomain
	r := query(t, a.ns, proxyIP, name, "A")
	require.Equal(t, "NOERROR", r.Rcode, "%s from %s", name, a.name)
	got := values(r.Answer)
	require.Len(t, got, 1, "%s from %s", name, a.name)
	require.Contains(t, allowed, got[0], "%s from %s", name, a.name)
}

// externalHandler answers like an external recursive resolver: every
// name under externalDomain has one A record (answer) and no other type;
// other names do not exist. Cluster-domain and DC/OS queries are counted
// in leaks and refused.
func externalHandler(answer netip.Addr, leaks *atomic.Int64) func(*dns.Msg) *dns.Msg {
	soa := &dns.SOA{
		Hdr: dns.RR_Header{Name: externalDomain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns:  "ns1." + externalDomain, Mbox: "hostmaster." + externalDomain,
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60,
	}
	return func(req *dns.Msg) *dns.Msg {
		resp := new(dns.Msg)
		resp.SetReply(req)
		resp.RecursionAvailable = true
		if len(req.Question) != 1 {
			resp.Rcode = dns.RcodeFormatError
			return resp
		}
		q := req.Question[0]
		name := dns.CanonicalName(q.Name)
		switch {
		case dns.IsSubDomain("mesos.", name) || dns.IsSubDomain("thisdcos.directory.", name) || dns.IsSubDomain("thisdcos.global.", name):
			leaks.Add(1)
			resp.Rcode = dns.RcodeRefused
		case dns.IsSubDomain(externalDomain, name) && q.Qtype == dns.TypeA:
			resp.Answer = []dns.RR{&dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   answer.AsSlice(),
			}}
		case dns.IsSubDomain(externalDomain, name):
			resp.Ns = []dns.RR{soa}
		default:
			resp.Rcode = dns.RcodeNameError
			resp.Ns = []dns.RR{soa}
		}
		return resp
	}
}

// The tasks withDCOSTasks adds, on the agent at dcosAgentAddr (slave
// dcosAgentID of the fixture).
const (
	dcosAgentID   = "20140803-125133-3041283216-5050-2410-0"
	dcosAgentAddr = "1.2.3.11"
)

// withDCOSTasks returns state with two more running marathon tasks in
// the shapes dcos-net names differently: "e2e-bridge", a Docker bridge
// task with host port 31800 mapped to its container address 198.51.100.5,
// and "e2e-cni", a CNI task with container addresses 198.51.100.7 and
// 2001:db8::7 and no host port.
func withDCOSTasks(t testing.TB, state []byte) []byte {
	t.Helper()
	status := func(ts float64, addrs ...string) []any {
		var ips []any
		for _, a := range addrs {
			proto := "IPv4"
			if strings.Contains(a, ":") {
				proto = "IPv6"
			}
			ips = append(ips, map[string]any{"protocol": proto, "ip_address": a})
		}
		return []any{map[string]any{
			"state": "TASK_RUNNING", "timestamp": ts,
			"container_status": map[string]any{"network_infos": []any{map[string]any{"name": "dcos", "ip_addresses": ips}}},
		}}
	}
	return withTasks(t, state,
		map[string]any{
			"id": "e2e-bridge.5d6c2a8e-2d7a-11e4-b8df-d43d7edb01cd", "name": "e2e-bridge",
			"slave_id": dcosAgentID, "state": "TASK_RUNNING",
			"resources": map[string]any{"cpus": 0.1, "mem": 64, "ports": "[31800-31800]"},
			"container": map[string]any{"type": "DOCKER", "docker": map[string]any{
				"image": "nginx", "network": "BRIDGE",
				"port_mappings": []any{map[string]any{"host_port": 31800, "container_port": 80, "protocol": "tcp"}},
			}},
			"statuses": status(1700000001.5, "198.51.100.5"),
		},
		map[string]any{
			"id": "e2e-cni.6e7d3b9f-2d7a-11e4-b8df-d43d7edb01cd", "name": "e2e-cni",
			"slave_id": dcosAgentID, "state": "TASK_RUNNING",
			"resources": map[string]any{"cpus": 0.1, "mem": 64},
			"statuses":  status(1700000002.5, "198.51.100.7", "2001:db8::7"),
		})
}

// dcosNames are the DC/OS names of the tasks withDCOSTasks adds and of
// the fixture's, as dcos-net derives them (dcos/dcos-net,
// apps/dcos_dns/src/dcos_dns_mesos.erl: task_agentip, task_containerip,
// task_autoip, which takes the agent's address when any port has a host
// port (is_port_mapping) and the task's addresses otherwise;
// apps/dcos_net/src/dcos_net_mesos_listener.erl: handle_agent_hostname,
// the agent's address from its hostname, and handle_task_ip, the latest
// status's network_infos addresses), and the mesos.thisdcos.directory
// copy of the cluster domain's records.
var dcosNames = []struct {
	name  string
	qtype uint16
	want  []string
}{
	// agentip: the agent's address, whatever the task's network.
	{"e2e-bridge.marathon.agentip.dcos.thisdcos.directory", dns.TypeA, []string{dcosAgentAddr}},
	{"e2e-cni.marathon.agentip.dcos.thisdcos.directory", dns.TypeA, []string{dcosAgentAddr}},
	// containerip: the latest status's network_infos addresses.
	{"e2e-bridge.marathon.containerip.dcos.thisdcos.directory", dns.TypeA, []string{"198.51.100.5"}},
	{"e2e-cni.marathon.containerip.dcos.thisdcos.directory", dns.TypeAAAA, []string{"2001:db8::7"}},
	// autoip: a host port makes it the agent's address; without one,
	// the container addresses.
	{"e2e-bridge.marathon.autoip.dcos.thisdcos.directory", dns.TypeA, []string{dcosAgentAddr}},
	{"e2e-cni.marathon.autoip.dcos.thisdcos.directory", dns.TypeA, []string{"198.51.100.7"}},
	{"e2e-cni.marathon.autoip.dcos.thisdcos.directory", dns.TypeAAAA, []string{"2001:db8::7"}},
	// The thisdcos.global alias.
	{"e2e-cni.marathon.autoip.dcos.thisdcos.global", dns.TypeA, []string{"198.51.100.7"}},
	{"e2e-cni.marathon.autoip.dcos.thisdcos.global", dns.TypeAAAA, []string{"2001:db8::7"}},
	// mesos.thisdcos.directory: the cluster domain's records, renamed.
	{"chronos.marathon.mesos.thisdcos.directory", dns.TypeA, []string{"1.2.3.11"}},
	{"_chronos._tcp.marathon.mesos.thisdcos.directory", dns.TypeSRV, []string{"chronos-rx8q6-0.marathon.slave.mesos.thisdcos.directory.:31332"}},
}

// checkDCOS resolves dcosNames from every agent with dig (over UDP and
// TCP) and the address names with glibc's getent, which asks AAAA first
// and falls back to A.
func (c *cluster) checkDCOS(t *testing.T) {
	getent := map[string][]string{}
	for _, n := range dcosNames {
		switch n.qtype {
		case dns.TypeAAAA:
			getent[n.name] = n.want
		case dns.TypeA:
			if _, ok := getent[n.name]; !ok {
				getent[n.name] = n.want
			}
		}
	}
	for i, a := range c.agents {
		for j, n := range dcosNames {
			args := []string{n.name, dns.TypeToString[n.qtype]}
			if (i+j)%2 == 1 {
				args = append(args, "+tcp")
			}
			r := query(t, a.ns, proxyIP, args...)
			require.Equal(t, "NOERROR", r.Rcode, "%s %s from %s", n.name, dns.TypeToString[n.qtype], a.name)
			require.Equal(t, n.want, values(r.Answer), "%s %s from %s", n.name, dns.TypeToString[n.qtype], a.name)
		}
		for name, want := range getent {
			out, err := a.ns.Getent(t, name)
			require.NoError(t, err, "getent %s from %s", name, a.name)
			require.ElementsMatch(t, want, getentAddrs(out), "getent %s from %s", name, a.name)
		}
	}
}

// stepContainer starts a container behind the second agent's bridge with
// the resolv.conf a container runtime copies from the agent's, and
// resolves from it, with glibc and dig, a cluster name, the node's own
// thisdcos.directory name and external names through the agent's
// link-local proxy address. Then the agent's own path to its proxy is
// cut (locally sent packets to the proxy address are prohibited, the
// container's still arrive): the watchdog switches the agent's
// resolv.conf to the fallback, and the container, whose copy still names
// the proxy, resolves all the same. The path is restored at the end.
func (c *cluster) stepContainer(t *testing.T) {
	const i = 1
	a := c.agents[i]
	ctr := testsupport.NewContainer(t, a.ns, "docker0", containerGateway, containerAddr)
	host, err := os.ReadFile(a.resolvConf)
	require.NoError(t, err)
	copied := ctr.SetResolvConf(t, host)
	require.Equal(t, []netip.Addr{netip.MustParseAddr(proxyIP)}, resolvconf.Parse(copied).Nameservers(),
		"the runtime's copy must keep the proxy address (it is not loopback):\n%s", copied)
	c.checkContainer(t, ctr, i, "direct")

	// The rule must come before the local table's (preference 0), which
	// is moved behind it.
	a.ns.Run(t, "ip", "rule", "add", "pref", "50", "iif", "lo", "to", proxyIP, "prohibit")
	a.ns.Run(t, "ip", "rule", "add", "pref", "100", "lookup", "local")
	a.ns.Run(t, "ip", "rule", "del", "pref", "0", "lookup", "local")
	cut := true
	restore := func() {
		if cut {
			a.ns.Run(t, "ip", "rule", "add", "pref", "0", "lookup", "local")
			a.ns.Run(t, "ip", "rule", "del", "pref", "100", "lookup", "local")
			a.ns.Run(t, "ip", "rule", "del", "pref", "50", "iif", "lo", "to", proxyIP, "prohibit")
			cut = false
		}
	}
	t.Cleanup(restore)
	waitNameservers(t, a.resolvConf, resolverIP(0), resolverIP(1))
	c.checkContainer(t, ctr, i, "fallback")
	restore()
	waitNameservers(t, a.resolvConf, proxyIP)
}

// checkContainer resolves from the container, with getent and dig through
// the agent's proxy: a cluster name, the agent's thisnode name and an
// external name (labelled with tag, so it was never cached).
func (c *cluster) checkContainer(t *testing.T, ctr *testsupport.Container, agent int, tag string) {
	t.Helper()
	out, err := ctr.NS.Getent(t, "chronos.marathon.mesos")
	require.NoError(t, err, "getent from the container (%s)", tag)
	require.Equal(t, []string{"1.2.3.11"}, getentAddrs(out))
	r := query(t, ctr.NS, proxyIP, "liquor-store.marathon.mesos", "A")
	require.Equal(t, "NOERROR", r.Rcode)
	require.Equal(t, []string{"1.2.3.11", "1.2.3.12"}, values(r.Answer))

	out, err = ctr.NS.Getent(t, "thisnode.thisdcos.directory")
	require.NoError(t, err, "getent thisnode from the container (%s)", tag)
	require.Equal(t, []string{agentIP(agent)}, getentAddrs(out))
	r = query(t, ctr.NS, proxyIP, "thisnode.thisdcos.directory", "A")
	require.Equal(t, []string{agentIP(agent)}, values(r.Answer))

	ext := strings.TrimSuffix(externalDomain, ".")
	out, err = ctr.NS.Getent(t, "glibc-container-"+tag+"."+ext)
	require.NoError(t, err, "getent of an external name from the container (%s)", tag)
	require.Subset(t, []string{resolverAnswer(0), resolverAnswer(1)}, getentAddrs(out))
	r = query(t, ctr.NS, proxyIP, "dig-container-"+tag+"."+ext, "A")
	require.Equal(t, "NOERROR", r.Rcode)
	require.Len(t, r.Answer, 1)
	require.Contains(t, []string{resolverAnswer(0), resolverAnswer(1)}, values(r.Answer)[0])
}

// withNewTask returns state with one more running marathon task,
// "e2e-new-task", with host port 31900 and container IP 192.0.2.200.
func withNewTask(t testing.TB, state []byte) []byte {
	t.Helper()
	task := map[string]any{
		"id":        "e2e-new-task.0f6b5c4e-2d7a-11e4-b8df-d43d7edb01cd",
		"name":      "e2e-new-task",
		"slave_id":  "20140803-125133-3041283216-5050-2410-0",
		"state":     "TASK_RUNNING",
		"resources": map[string]any{"cpus": 0.1, "mem": 64, "ports": "[31900-31900]"},
		"statuses": []any{map[string]any{
			"state": "TASK_RUNNING", "timestamp": 1700000000.5,
			"container_status": map[string]any{"network_infos": []any{map[string]any{
				"ip_addresses": []any{map[string]any{"ip_address": "192.0.2.200"}},
			}}},
		}},
	}
	return withTasks(t, state, task)
}

// withTasks returns state with tasks added to its marathon framework.
func withTasks(t testing.TB, state []byte, tasks ...map[string]any) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(state))
	dec.UseNumber() // keep big numbers as they are
	var st map[string]any
	require.NoError(t, dec.Decode(&st))
	found := false
	for _, f := range st["frameworks"].([]any) {
		fw := f.(map[string]any)
		if fw["name"] == "marathon" {
			for _, task := range tasks {
				task["framework_id"] = fw["id"]
				fw["tasks"] = append(fw["tasks"].([]any), task)
			}
			found = true
		}
	}
	require.True(t, found, "no marathon framework in the state")
	out, err := json.Marshal(st)
	require.NoError(t, err)
	return out
}

// golden is the Mesos-DNS record set of the fixture state: values (as
// values returns them) by name and type.
type golden map[rrKey][]string

type rrKey struct {
	name  string
	qtype uint16
}

func loadGolden(t testing.TB) golden {
	t.Helper()
	f, err := os.Open(goldenPath)
	require.NoError(t, err)
	defer f.Close()
	g := golden{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		qtype, ok := dns.StringToType[fields[1]]
		require.True(t, ok, "golden line %q", sc.Text())
		k := rrKey{dns.CanonicalName(fields[0]), qtype}
		g[k] = append(g[k], fields[2])
	}
	require.NoError(t, sc.Err())
	for k := range g {
		slices.Sort(g[k])
	}
	return g
}

// batches splits the record set into n disjoint batches of keys, so each
// step asks names no earlier step cached. Names about the masters are
// left out: the fake Mesos master reports its own address as the leader,
// and ns1 is the answering master's own address, so they differ from the
// fixture's (stepResolve checks them).
func (g golden) batches(n int) [][]rrKey {
	var keys []rrKey
	for k := range g {
		first, _, _ := strings.Cut(k.name, ".")
		if strings.HasPrefix(first, "master") || first == "leader" || first == "_leader" || first == "ns1" {
			continue
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rrKey) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return int(a.qtype) - int(b.qtype)
	})
	out := make([][]rrKey, n)
	for i, k := range keys {
		out[i%n] = append(out[i%n], k)
	}
	// The stale step needs A records first in its batch: cheap to check.
	last := out[n-1]
	slices.SortStableFunc(last, func(a, b rrKey) int {
		return btoi(a.qtype != dns.TypeA) - btoi(b.qtype != dns.TypeA)
	})
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// values renders answer records the way the golden file does: addresses
// for A and AAAA, target:port for SRV; sorted.
func values(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		case *dns.SRV:
			out = append(out, dns.CanonicalName(v.Target)+":"+strconv.Itoa(int(v.Port)))
		default:
			out = append(out, rr.String())
		}
	}
	slices.Sort(out)
	return out
}

// query runs dig from the namespace and parses the answer, failing the
// test when there is none: a client timeout is always a failure.
func query(t testing.TB, ns *testsupport.NetNS, server string, args ...string) testsupport.DigResult {
	t.Helper()
	out, err := ns.Dig(t, server, args...)
	require.NoError(t, err, "no answer to dig %v (client timeout?)", args)
	r, err := testsupport.ParseDig(out)
	require.NoError(t, err)
	return r
}

// getentAddrs returns the addresses in "getent hosts" output.
func getentAddrs(out string) []string {
	var addrs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			addrs = append(addrs, f[0])
		}
	}
	return addrs
}

func nameservers(t testing.TB, path string) []netip.Addr {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return resolvconf.Parse(data).Nameservers()
}

// waitNameservers waits until the resolv.conf at path lists exactly want.
func waitNameservers(t testing.TB, path string, want ...string) {
	t.Helper()
	var addrs []netip.Addr
	for _, w := range want {
		addrs = append(addrs, netip.MustParseAddr(w))
	}
	waitFor(t, fmt.Sprintf("%s to list %v", path, want), func() error {
		if got := nameservers(t, path); !slices.Equal(got, addrs) {
			return fmt.Errorf("nameservers %v", got)
		}
		return nil
	})
}

// waitFor polls cond until it returns nil, failing the test with the last
// error after deadline.
func waitFor(t testing.TB, what string, cond func() error) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeConfig(t testing.TB, name string, cfg map[string]any) string {
	t.Helper()
	data, err := json.MarshalIndent(cfg, "", "  ")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}
