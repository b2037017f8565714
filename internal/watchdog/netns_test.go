//go:build upstreamhelper

// These tests run real DNS servers through testsupport.StartUpstream and
// BuildBinary; they are built with -tags upstreamhelper until that helper
// is part of internal/testsupport.

package watchdog

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
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

// The end-to-end test runs DNS servers as separate processes inside a
// network namespace: this test binary re-executed in helper mode.
const fakeDNSEnv = "SPARTAN_WATCHDOG_FAKE_DNS"

// e2eName is the name getent resolves, through the proxy or straight from
// the upstream.
const e2eName = "web.cluster.test."

var e2eAddr = net.IPv4(192, 0, 2, 80)

// TestHelperFakeDNS serves DNS on the address in its environment until
// killed; "proxy" mode also answers ready.spartan. It is not a test on its
// own.
func TestHelperFakeDNS(t *testing.T) {
	spec, ok := os.LookupEnv(fakeDNSEnv)
	if !ok {
		t.Skip("helper process for TestNetnsGetentSurvivesProxyKill")
	}
	addr, mode, _ := strings.Cut(spec, ",")
	testsupport.StartUpstream(t, testsupport.WithAddr(addr), testsupport.WithHandler(func(req *dns.Msg) *dns.Msg {
		q := req.Question[0]
		if mode == "proxy" && dns.CanonicalName(q.Name) == "ready.spartan." {
			return readyHandler(req)
		}
		resp := new(dns.Msg)
		resp.SetReply(req)
		switch {
		case dns.CanonicalName(q.Name) == e2eName && q.Qtype == dns.TypeA:
			resp.Answer = append(resp.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
				A:   e2eAddr,
			})
		case dns.CanonicalName(q.Name) == e2eName:
			// NODATA for AAAA.
		default:
			resp.Rcode = dns.RcodeNameError
		}
		return resp
	}))
	fmt.Println("FAKE-DNS-READY")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}

// nsProcess is a process started in the namespace.
type nsProcess struct {
	*exec.Cmd
	done chan struct{} // closed once it has exited
}

// startInNS starts a command in the namespace and waits for it to print
// ready (when not empty). The process is killed when the test ends.
func startInNS(t *testing.T, ns *testsupport.NetNS, env []string, ready string, name string, args ...string) *nsProcess {
	t.Helper()
	cmd := ns.Command(context.Background(), name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	lines := make(chan string, 100)
	go func() {
		defer close(done)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			select {
			case lines <- s.Text():
			default:
			}
		}
		_ = cmd.Wait()
	}()
	p := &nsProcess{Cmd: cmd, done: done}
	if ready == "" {
		return p
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, ready) {
				return p
			}
		case <-done:
			t.Fatalf("%s exited before it was ready", name)
		case <-deadline:
			t.Fatalf("%s not ready after 30s", name)
		}
	}
}

func startFakeDNS(t *testing.T, ns *testsupport.NetNS, addr, mode string) *nsProcess {
	return startInNS(t, ns, []string{fakeDNSEnv + "=" + addr + "," + mode}, "FAKE-DNS-READY",
		os.Args[0], "-test.run=^TestHelperFakeDNS$", "-test.v", "-test.count=1")
}

// getent resolves e2eName with glibc inside the namespace.
func getent(ns *testsupport.NetNS) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := ns.Command(ctx, "getent", "hosts", strings.TrimSuffix(e2eName, ".")).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestNetnsGetentSurvivesProxyKill: in a network namespace of its own, the
// watchdog manages /etc/netns/NAME/resolv.conf (the namespace's
// /etc/resolv.conf for "ip netns exec"), the proxy listens on 192.0.2.53 and
// the upstream on 192.0.2.1. glibc's getent keeps resolving while the proxy
// is killed with SIGKILL and started again.
func TestNetnsGetentSurvivesProxyKill(t *testing.T) {
	if _, err := exec.LookPath("getent"); err != nil {
		t.Skip("skipping: getent not found")
	}
	ns := testsupport.NewNetNS(t)
	ns.AddAddr(t, "192.0.2.53/32")
	ns.AddAddr(t, "192.0.2.1/32")
	const orig = "# the namespace's own resolv.conf\nnameserver 192.0.2.1\noptions ndots:1\n"
	path := ns.EtcFile(t, "resolv.conf", []byte(orig))

	startFakeDNS(t, ns, "192.0.2.1:53", "upstream")
	proxy := startFakeDNS(t, ns, "192.0.2.53:53", "proxy")

	bin := testsupport.BuildBinary(t, "github.com/spartan-dns/spartan/cmd/watchdog")
	wd := startInNS(t, ns, nil, "", bin, "-resolv-conf", path, "-proxy", "192.0.2.53",
		"-upstreams", "192.0.2.1", "-interval", "100ms", "-timeout", "300ms",
		"-fail-after", "2", "-recover-after", "2")
	waitState(t, path, Up)
	out, err := getent(ns)
	require.NoError(t, err, "getent through the proxy: %s", out)
	require.Contains(t, out, "192.0.2.80")

	// Resolve continuously in the background from now on, recording when
	// each lookup started and ended.
	type lookup struct {
		start, end time.Time
		ok         bool
		out        string
	}
	var mu sync.Mutex
	var lookups []lookup
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			out, err := getent(ns)
			mu.Lock()
			lookups = append(lookups, lookup{start, time.Now(), err == nil && strings.Contains(out, "192.0.2.80"), out})
			mu.Unlock()
		}
	})

	killed := time.Now()
	require.NoError(t, proxy.Process.Signal(syscall.SIGKILL))
	<-proxy.done
	waitState(t, path, Down)
	switched := time.Now() // the file was switched before this
	_, f := fileState(t, path)
	require.Equal(t, ips("192.0.2.1"), f.Nameservers())
	for range 5 {
		out, err := getent(ns)
		require.NoError(t, err, "getent with the proxy dead: %s", out)
		require.Contains(t, out, "192.0.2.80")
	}

	startFakeDNS(t, ns, "192.0.2.53:53", "proxy")
	waitState(t, path, Up)
	for range 5 {
		out, err := getent(ns)
		require.NoError(t, err, "getent with the proxy back: %s", out)
		require.Contains(t, out, "192.0.2.80")
	}
	close(stop)
	wg.Wait()
	// Lookups fail only while the kill is being detected: each failed one
	// overlaps the window between the kill and the switch to the
	// upstreams. Before the kill, while the proxy is dead and after it is
	// back, every lookup succeeds.
	failed := 0
	for _, l := range lookups {
		if l.ok {
			continue
		}
		failed++
		require.True(t, l.end.After(killed) && l.start.Before(switched),
			"lookup %v..%v failed outside the detection window %v..%v: %s", l.start, l.end, killed, switched, l.out)
	}
	require.Greater(t, len(lookups)-failed, 0)
	t.Logf("background getent: %d lookups, %d failed, all during the %v between the kill and the switch",
		len(lookups), failed, switched.Sub(killed).Round(time.Millisecond))

	require.NoError(t, wd.Process.Signal(syscall.SIGTERM))
	select {
	case <-wd.done:
	case <-time.After(20 * time.Second):
		t.Fatal("watchdog did not exit on SIGTERM")
	}
	require.Equal(t, 0, wd.ProcessState.ExitCode(), "clean exit on SIGTERM")
	restore := exec.Command(bin, "-resolv-conf", path, "-restore")
	rout, err := restore.CombinedOutput()
	require.NoError(t, err, "%s", rout)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, orig, string(data))
	require.NoFileExists(t, path+resolvconf.OrigSuffix)
}
