package watchdog

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/resolvconf"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// e2eName is the name getent resolves, through the proxy or straight from
// the upstream; e2eIP is its only address.
const (
	e2eName = "web.cluster.test."
	e2eIP   = "192.0.2.80"
)

// Addresses inside the test's namespace: spartan's default listen address
// and the upstream resolver.
const (
	nsProxyIP    = "169.254.20.10"
	nsUpstreamIP = "192.0.2.1"
)

// e2eHandler is the upstream's zone: e2eName A e2eIP, NODATA (with an SOA,
// so negative answers cache) for its other types, NXDOMAIN for the rest.
func e2eHandler(req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	q := req.Question[0]
	soa, _ := dns.NewRR("cluster.test. 60 IN SOA ns.cluster.test. hostmaster.cluster.test. 1 60 60 86400 60")
	switch {
	case dns.CanonicalName(q.Name) == e2eName && q.Qtype == dns.TypeA:
		rr, _ := dns.NewRR(q.Name + " 60 IN A " + e2eIP)
		resp.Answer = []dns.RR{rr}
	case dns.CanonicalName(q.Name) == e2eName:
		resp.Ns = []dns.RR{soa}
	default:
		resp.Rcode = dns.RcodeNameError
		resp.Ns = []dns.RR{soa}
	}
	return resp
}

// getent resolves e2eName with glibc inside the namespace.
func getent(ns *testsupport.NetNS) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, "getent", "hosts", strings.TrimSuffix(e2eName, "."))
	// Standard error only carries "ip netns exec" complaining that it
	// cannot bind-mount resolv.conf.spartan-orig, which /etc lacks.
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), err
}

// requireResolves runs getent n times and requires every lookup to give
// e2eIP.
func requireResolves(t *testing.T, ns *testsupport.NetNS, n int, when string) {
	t.Helper()
	for range n {
		out, err := getent(ns)
		require.NoError(t, err, "getent %s: %s", when, out)
		require.Regexp(t, `^`+regexp.QuoteMeta(e2eIP)+`\s+`+regexp.QuoteMeta(strings.TrimSuffix(e2eName, "."))+`$`, out, "getent %s", when)
	}
}

// TestNetnsGetentSurvivesProxyKill runs the real spartan and watchdog
// binaries in a network namespace of the test's own. spartan serves
// 169.254.20.10:53 and forwards to a fake upstream at 192.0.2.1:53; the
// watchdog manages /etc/netns/NAME/resolv.conf, which "ip netns exec"
// shows its processes as /etc/resolv.conf. glibc's getent keeps resolving
// while spartan is SIGKILLed and started again; the upstream's query
// counter shows which path the lookups took (spartan caches, the direct
// path does not).
func TestNetnsGetentSurvivesProxyKill(t *testing.T) {
	testsupport.SkipUnlessRoot(t, "ip netns (network namespaces)")
	if _, err := exec.LookPath("getent"); err != nil {
		testsupport.SkipOrFail(t, "skipping: getent (glibc's resolver, package libc-bin) not found")
	}
	ns := testsupport.NewNetNS(t)
	ns.AddAddr(t, nsProxyIP+"/32")
	ns.AddAddr(t, nsUpstreamIP+"/32")
	const orig = "# the namespace's own resolv.conf\nnameserver " + nsUpstreamIP + "\noptions ndots:1\n"
	path := ns.EtcFile(t, "resolv.conf", []byte(orig))

	var upstream *testsupport.Upstream
	ns.Do(t, func() {
		upstream = testsupport.StartUpstream(t, testsupport.WithAddr(nsUpstreamIP+":53"), testsupport.WithHandler(e2eHandler))
	})
	spartan := testsupport.SpartanOptions{
		Listen:    []string{nsProxyIP + ":53"},
		Upstreams: []string{nsUpstreamIP + ":53"},
		NetNS:     ns,
	}
	proxy := testsupport.StartSpartan(t, spartan)

	bin := testsupport.BuildBinary(t, "github.com/spartan-dns/spartan/cmd/watchdog")
	wd := testsupport.StartCmd(t, ns.Command(context.Background(), bin, "-resolv-conf", path,
		"-proxy", nsProxyIP, "-upstreams", nsUpstreamIP, "-interval", "100ms", "-timeout", "300ms",
		"-fail-after", "2", "-recover-after", "2"))
	waitState(t, path, Up)
	_, f := fileState(t, path)
	require.Equal(t, ips(nsProxyIP), f.Nameservers())
	opt, _ := f.Option("ndots")
	require.Equal(t, "1", opt.Value, "the namespace's options are kept")

	// Through the proxy: the first lookup reaches the upstream, the
	// others are cache hits.
	upstream.Reset()
	requireResolves(t, ns, 5, "through the proxy")
	viaProxy := upstream.Queries()
	require.Positive(t, viaProxy)
	require.LessOrEqual(t, viaProxy, 2, "5 lookups through spartan's cache: one A and at most one AAAA upstream query")

	// From now on resolve continuously in the background, one lookup at a
	// time. A lookup started after the kill and before the switch reads a
	// file that still names the dead proxy and fails (glibc gets port
	// unreachable): that detection window is what spartan.socket closes
	// for the copies containers hold, not what this test shows. So the
	// loop is held over it: no lookup starts between the kill and the
	// switch, and only the lookups in flight at the kill instant, counted
	// then, may fail.
	type lookup struct {
		done, ok bool
		out      string
	}
	var (
		mu      sync.Mutex
		resume  = sync.NewCond(&mu)
		held    bool
		lookups []lookup
	)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			mu.Lock()
			for held && ctx.Err() == nil {
				resume.Wait()
			}
			if ctx.Err() != nil {
				mu.Unlock()
				return
			}
			i := len(lookups)
			lookups = append(lookups, lookup{})
			mu.Unlock()
			out, err := getent(ns)
			mu.Lock()
			lookups[i] = lookup{done: true, ok: err == nil && strings.HasPrefix(out, e2eIP+" "), out: out}
			mu.Unlock()
		}
	})
	hold := func(h bool) {
		mu.Lock()
		held = h
		resume.Broadcast()
		mu.Unlock()
	}
	stopBackground := sync.OnceFunc(func() {
		stop()
		hold(false)
		wg.Wait()
	})
	defer stopBackground()
	// progress waits until the background loop has finished two more
	// lookups, so that every phase below is covered by some.
	progress := func(phase string) {
		t.Helper()
		mu.Lock()
		from := len(lookups)
		mu.Unlock()
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(lookups) >= from+2
		}, 60*time.Second, 5*time.Millisecond, "background getent made no progress %s", phase)
	}
	progress("before the kill")

	// Hold the loop, then note which lookups are in flight: no other can
	// start before the switch, so these are all that may see the kill.
	mu.Lock()
	held = true
	inFlight := map[int]bool{}
	for i, l := range lookups {
		if !l.done {
			inFlight[i] = true
		}
	}
	mu.Unlock()
	require.LessOrEqual(t, len(inFlight), 1, "the loop runs one lookup at a time")
	killed := time.Now()
	proxy.Kill() // SIGKILL, and reaped
	waitState(t, path, Down)
	switched := time.Now() // the file was switched before this
	hold(false)
	_, f = fileState(t, path)
	require.Equal(t, ips(nsUpstreamIP), f.Nameservers())
	upstream.Reset()
	requireResolves(t, ns, 5, "with spartan dead")
	require.GreaterOrEqual(t, upstream.Queries(), 5, "with spartan dead every lookup goes to the upstream itself")
	progress("with spartan dead")

	restarted := time.Now()
	testsupport.StartSpartan(t, spartan) // stopped at cleanup, like the first
	waitState(t, path, Up)
	back := time.Now()
	_, f = fileState(t, path)
	require.Equal(t, ips(nsProxyIP), f.Nameservers(), "resolv.conf points at the proxy again")
	progress("with spartan back")
	// The cache check needs the background lookups gone: one started
	// before the switch back asks the upstream itself.
	stopBackground()
	upstream.Reset()
	requireResolves(t, ns, 5, "with spartan back")
	require.LessOrEqual(t, upstream.Queries(), 2, "with spartan back lookups go through its cache again")

	// Before the kill, while spartan is dead, while it starts again and
	// after it is back, every lookup succeeds; only one in flight at the
	// kill instant may have failed.
	failed := 0
	for i, l := range lookups {
		if !l.done || l.ok {
			continue
		}
		failed++
		require.True(t, inFlight[i], "lookup %d of %d failed and was not in flight at the kill: %q", i, len(lookups), l.out)
	}
	require.LessOrEqual(t, failed, len(inFlight))
	t.Logf("background getent: %d lookups, %d failed (%d in flight at the kill); switch %v after the kill, back %v after the restart",
		len(lookups), failed, len(inFlight), switched.Sub(killed).Round(time.Millisecond), back.Sub(restarted).Round(time.Millisecond))

	require.NoError(t, wd.Signal(syscall.SIGTERM))
	wctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	code, err := wd.Wait(wctx)
	require.NoError(t, err, "watchdog exit on SIGTERM")
	require.Equal(t, 0, code, "clean exit on SIGTERM")
	rout, err := exec.Command(bin, "-resolv-conf", path, "-restore").CombinedOutput()
	require.NoError(t, err, "%s", rout)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, orig, string(data), "restore gives the namespace's file back byte for byte")
	require.NoFileExists(t, path+resolvconf.OrigSuffix)
}
