package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

// Operational tests against the built binary: socket activation, restarts
// under load, sd_notify, metrics and live reload.

const waitLong = 30 * time.Second // bound against hanging, not a speed target

func freeAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t, "127.0.0.1"))
}

// answerWith is an upstream handler answering every A query with ip.
func answerWith(ip string) func(req *dns.Msg) *dns.Msg {
	return func(req *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		m.RecursionAvailable = true
		if req.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(req.Question[0].Name + " 60 IN A " + ip)
			m.Answer = []dns.RR{rr}
		}
		return m
	}
}

// waitCount waits until s occurs n times in the process output.
func waitCount(t *testing.T, p *testsupport.Process, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for strings.Count(p.Output(), s) < n {
		require.False(t, p.Exited(), "process exited waiting for %q", s)
		require.True(t, time.Now().Before(deadline), "waiting for %d× %q in:\n%s", n, s, p.Output())
		time.Sleep(10 * time.Millisecond)
	}
}

func stopGracefully(t *testing.T, p *testsupport.Process) {
	t.Helper()
	require.NoError(t, p.Signal(syscall.SIGTERM))
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	code, err := p.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, code, p.Output())
}

// TestSystemdSocketActivate is the contract: started by
// "systemd-socket-activate -d -l ADDR BIN -config FILE" spartan serves DNS
// on ADDR over UDP; without -d, over TCP. The configured listen address is
// not bound: the passed socket replaces it.
func TestSystemdSocketActivate(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		testsupport.SkipOrFail(t, "systemd-socket-activate not installed (apt-get install systemd); socket activation not exercised")
	}
	bin := testsupport.BuildBinary(t, pkg)
	up := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.2:0"))
	for _, tc := range []struct {
		name string
		flag []string
		dig  []string
	}{
		{"udp", []string{"-d"}, nil},
		{"tcp", nil, []string{"+tcp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, unused := freeAddr(t), freeAddr(t)
			cfg := writeFile(t, "spartan.json", fmt.Sprintf(`{"listen": [%q], "upstreams": [%q], "metrics": ""}`, unused, up.Addr()))
			args := append(append([]string{}, tc.flag...), "-l", addr, bin, "-config", cfg)
			p := testsupport.StartCmd(t, exec.Command(tool, args...))
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			require.NoError(t, p.WaitOutput(ctx, "Listening on"))

			// The first query makes the tool exec spartan; it waits in
			// the socket meanwhile.
			out, err := testsupport.Dig(t, addr, append(tc.dig, "+time=10", "www.example.com", "A", "+short")...)
			require.NoError(t, err)
			require.Contains(t, out, testsupport.DefaultIP.String())
			out, err = testsupport.Dig(t, addr, append(tc.dig, "ready.spartan", "A", "+short")...)
			require.NoError(t, err)
			require.Contains(t, out, "127.0.0.1")
			require.NoError(t, p.WaitOutput(ctx, "spartan serving"))
			require.Contains(t, p.Output(), "serving "+addr)

			_, err = testsupport.Dig(t, unused, append(tc.dig, "+time=1", "ready.spartan")...)
			require.Error(t, err, "the configured address must not be bound under socket activation")
			stopGracefully(t, p)
		})
	}
}

// TestKillRestartUnderSteadyLoad holds the listening sockets the way
// systemd does with spartan.socket, and SIGKILLs and restarts spartan three
// times under a steady stream of UDP and TCP queries. Clients retry as a
// stub resolver does (timeout 1 s, 3 attempts); no query may fail.
func TestKillRestartUnderSteadyLoad(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	up := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.2:0"))
	h := testsupport.NewSocketHolder(t)
	cfg := writeFile(t, "spartan.json", fmt.Sprintf(`{"listen": [%q], "upstreams": [%q], "metrics": ""}`, freeAddr(t), up.Addr()))
	h.Start(t, nil, bin, "-config", cfg)

	udp := testsupport.StartQueryStream(t, h.Addr, testsupport.QueryStreamOptions{Workers: 4})
	tcp := testsupport.StartQueryStream(t, h.Addr, testsupport.QueryStreamOptions{Workers: 2, Net: "tcp",
		Name: func(w, i int) string { return fmt.Sprintf("t%d-%d.stream.example.", w, i) }})
	udp.WaitAnswered(t, 100, waitLong)
	tcp.WaitAnswered(t, 50, waitLong)
	for range 3 {
		pid := h.Pid()
		h.Kill()
		// Nobody serves for a moment: queries queue in the sockets.
		time.Sleep(200 * time.Millisecond)
		h.Start(t, nil, bin, "-config", cfg)
		require.NotEqual(t, pid, h.Pid())
		udp.WaitAnswered(t, 100, waitLong)
		tcp.WaitAnswered(t, 50, waitLong)
	}
	ru, rt := udp.Stop(), tcp.Stop()
	t.Logf("udp: %d answered, %d retries; tcp: %d answered, %d retries", ru.Answered, ru.Retries, rt.Answered, rt.Retries)
	require.Empty(t, ru.Failed, "UDP queries that never got an answer")
	require.Empty(t, rt.Failed, "TCP queries that never got an answer")
}

// TestMetricsAfterKnownQueries sends a known series of queries and checks
// the counters, /health and /ready. Counters are compared before and after
// the series; the supervisor's own self-queries (ready.spartan A over UDP
// and TCP) are told apart by type: the series asks the local zone for
// AAAA.
func TestMetricsAfterKnownQueries(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	up := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.2:0"))
	listen, metricsAddr := freeAddr(t), freeAddr(t)
	cfg := writeFile(t, "spartan.json", fmt.Sprintf(`{"listen": [%q], "upstreams": [%q], "metrics": %q}`, listen, up.Addr(), metricsAddr))
	p := testsupport.StartProcess(t, bin, "-config", cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "msg=ready"))
	url := "http://" + metricsAddr + "/metrics"

	before := testsupport.Scrape(t, url)
	for _, q := range [][]string{
		{"+tcp", "ready.spartan", "AAAA"}, {"+tcp", "ready.spartan", "AAAA"}, {"ready.spartan", "AAAA"}, // NODATA
		{"www.example.com", "A"}, {"www.example.com", "A"}, // miss, then hit
		{"+tcp", "www.example.com", "AAAA"}, // NODATA from upstream
		{"host.nx", "A"},                    // NXDOMAIN from upstream
		{"+tcp", "nothing.spartan", "AAAA"}, // NXDOMAIN from the local zone
	} {
		_, err := testsupport.Dig(t, listen, q...)
		require.NoError(t, err)
	}
	after := testsupport.Scrape(t, url)
	delta := func(name string, labels ...string) float64 {
		a, _ := after.Value(name, labels...)
		b, _ := before.Value(name, labels...)
		return a - b
	}
	selfUDP := delta("spartan_dns_requests_total", "zone", "spartan.", "type", "A", "proto", "udp")
	selfTCP := delta("spartan_dns_requests_total", "zone", "spartan.", "type", "A", "proto", "tcp")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"spartan_dns_requests_total", []string{"zone", "spartan.", "type", "AAAA", "proto", "tcp"}, 3},
		{"spartan_dns_requests_total", []string{"zone", "spartan.", "type", "AAAA", "proto", "udp"}, 1},
		{"spartan_dns_requests_total", []string{"zone", ".", "type", "A", "proto", "udp"}, 3},
		{"spartan_dns_requests_total", []string{"zone", ".", "type", "AAAA", "proto", "tcp"}, 1},
		{"spartan_dns_responses_total", []string{"rcode", "NOERROR"}, 6 + selfUDP + selfTCP},
		{"spartan_dns_responses_total", []string{"rcode", "NXDOMAIN"}, 2},
		{"spartan_dns_request_duration_seconds", []string{"proto", "udp"}, 4 + selfUDP},
		{"spartan_dns_request_duration_seconds", []string{"proto", "tcp"}, 4 + selfTCP},
		{"spartan_cache_hits_total", nil, 1},
		{"spartan_upstream_requests_total", []string{"group", ".", "upstream", up.Addr()}, 3},
		{"spartan_upstream_wins_total", []string{"group", ".", "upstream", up.Addr()}, 3},
		{"spartan_upstream_races_total", []string{"group", ".", "outcome", "answered"}, 3},
		{"spartan_upstream_timeouts_total", []string{"group", ".", "upstream", up.Addr()}, 0},
	} {
		require.Equal(t, c.want, delta(c.name, c.labels...), "%s%v", c.name, c.labels)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"spartan_upstream_healthy", []string{"group", ".", "upstream", up.Addr()}, 1},
		{"spartan_zone_serial", []string{"zone", "spartan."}, 1},
		{"spartan_config_reloads_total", []string{"result", "failure"}, 0},
	} {
		require.Equal(t, c.want, after.Must(t, c.name, c.labels...), "%s%v", c.name, c.labels)
	}
	require.Equal(t, 3, up.Queries())
	require.GreaterOrEqual(t, after.Must(t, "spartan_cache_entries"), 3.0)
	require.GreaterOrEqual(t, after.Must(t, "spartan_cache_answers"), 3.0)
	require.Positive(t, after.Must(t, "spartan_cache_misses_total"))
	require.Zero(t, after.Must(t, "spartan_upstream_inflight_races"))
	require.Zero(t, after.Must(t, "spartan_dns_waiting_queries"))

	// A datagram that is not DNS is counted as malformed, nothing else.
	c, err := net.Dial("udp", listen)
	require.NoError(t, err)
	_, err = c.Write([]byte{0xde, 0xad, 0xbe})
	require.NoError(t, err)
	c.Close()
	// The datagram is read asynchronously: scrape until it is counted.
	var malformed float64
	for deadline := time.Now().Add(waitLong); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if malformed = testsupport.Scrape(t, url).Must(t, "spartan_dns_malformed_total") - before.Must(t, "spartan_dns_malformed_total"); malformed > 0 {
			break
		}
	}
	require.Equal(t, 1.0, malformed)

	for path, want := range map[string]string{"/health": "ok\n", "/ready": "ready\n"} {
		resp, err := http.Get("http://" + metricsAddr + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Equal(t, want, string(body), path)
	}

	// Flushing one name on the admin endpoint makes its next query a miss.
	resp, err := http.Post("http://"+metricsAddr+"/cache/flush?name=WWW.example.com", "", nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "flushed 2 entries for WWW.example.com\n", string(body))
	_, err = testsupport.Dig(t, listen, "www.example.com", "A")
	require.NoError(t, err)
	require.Equal(t, 4, up.Queries())
	stopGracefully(t, p)
}

// TestMetricsBindFailureKeepsServing: a metrics address already in use is
// logged as an error and DNS is served anyway.
func TestMetricsBindFailureKeepsServing(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	up := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.2:0"))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	listen := freeAddr(t)
	cfg := writeFile(t, "spartan.json", fmt.Sprintf(`{"listen": [%q], "upstreams": [%q], "metrics": %q}`, listen, up.Addr(), busy.Addr()))
	p := testsupport.StartProcess(t, bin, "-config", cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "msg=ready"))
	require.Contains(t, p.Output(), `level=ERROR msg="metrics endpoint disabled; DNS keeps serving"`)
	out, err := testsupport.Dig(t, listen, "www.example.com", "A", "+short")
	require.NoError(t, err)
	require.Contains(t, out, testsupport.DefaultIP.String())
	stopGracefully(t, p)
}

// TestReloadUnderLoad changes routing under a steady query stream: first
// by rewriting the upstreams file (noticed without a signal), then with
// SIGHUP and a new configuration adding a zone; then an invalid
// configuration and an upstreams file without nameservers are refused
// while the running configuration keeps serving. No query may fail.
func TestReloadUnderLoad(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	// Nameservers in a resolv.conf file have no port: these serve port 53
	// on loopback addresses of their own.
	upA := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.152:53"), testsupport.WithHandler(answerWith("192.0.2.1")))
	upB := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.153:53"), testsupport.WithHandler(answerWith("192.0.2.2")))
	upC := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.154:0"), testsupport.WithHandler(answerWith("203.0.113.3")))
	dir := t.TempDir()
	upstreams := filepath.Join(dir, "upstreams.conf")
	replace := func(path, content string) {
		tmp := path + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
		require.NoError(t, os.Rename(tmp, path))
	}
	replace(upstreams, "nameserver 127.0.0.152\n")
	listen := freeAddr(t)
	base := fmt.Sprintf(`"listen": [%q], "upstreamsFile": %q, "metrics": ""`, listen, upstreams)
	cfgPath := filepath.Join(dir, "spartan.json")
	replace(cfgPath, "{"+base+"}")
	p := testsupport.StartProcess(t, bin, "-config", cfgPath)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "msg=ready"))

	stream := testsupport.StartQueryStream(t, listen, testsupport.QueryStreamOptions{Workers: 4})
	stream.WaitAnswered(t, 100, waitLong)
	require.Equal(t, map[string]int{"192.0.2.1": stream.Answers()["192.0.2.1"]}, stream.Answers())

	// 1. The upstreams file changes: routing follows without a signal.
	replace(upstreams, "# moved\nnameserver 127.0.0.153\n")
	waitCount(t, p, "upstream table swapped", 1)
	stream.WaitAnswered(t, 100, waitLong)
	before, queriesA := stream.Answers()["192.0.2.1"], upA.Queries()
	stream.WaitAnswered(t, 100, waitLong)
	require.Equal(t, before, stream.Answers()["192.0.2.1"], "queries still reach the old upstream after the swap")
	require.Positive(t, stream.Answers()["192.0.2.2"])
	require.Positive(t, upB.Queries())

	// 2. SIGHUP with a new zone: the cache is flushed and corp. routes to
	// its own group.
	replace(cfgPath, fmt.Sprintf(`{%s, "zones": {"corp.": [%q]}}`, base, upC.Addr()))
	require.NoError(t, p.Signal(syscall.SIGHUP))
	waitCount(t, p, "upstream table swapped", 2)
	require.Contains(t, p.Output(), "cache flushed")
	out, err := testsupport.Dig(t, listen, "db.corp", "A", "+short")
	require.NoError(t, err)
	require.Contains(t, out, "203.0.113.3")
	require.Equal(t, 1, upC.Queries())
	stream.WaitAnswered(t, 100, waitLong)

	// 3. An invalid configuration is refused; the running one serves on.
	replace(cfgPath, `{"listen": [], "bogus": 1}`)
	require.NoError(t, p.Signal(syscall.SIGHUP))
	waitCount(t, p, "configuration reload refused", 1)
	require.Contains(t, p.Output(), cfgPath)
	stream.WaitAnswered(t, 100, waitLong)
	out, err = testsupport.Dig(t, listen, "db2.corp", "A", "+short")
	require.NoError(t, err)
	require.Contains(t, out, "203.0.113.3")

	// 4. So is an upstreams file left without a nameserver.
	replace(cfgPath, fmt.Sprintf(`{%s, "zones": {"corp.": [%q]}}`, base, upC.Addr()))
	replace(upstreams, "# emptied by mistake\n")
	waitCount(t, p, "configuration reload refused", 2)
	stream.WaitAnswered(t, 100, waitLong)
	require.Equal(t, before, stream.Answers()["192.0.2.1"])

	res := stream.Stop()
	t.Logf("%d answered, %d retries during the reloads", res.Answered, res.Retries)
	require.Empty(t, res.Failed, "queries that never got an answer")
	require.Equal(t, queriesA, upA.Queries(), "queries reached the replaced upstream")
	stopGracefully(t, p)
}

// TestSdNotify runs spartan under a real NOTIFY_SOCKET with a watchdog:
// READY=1 with a status line, WATCHDOG=1 pings, STOPPING=1 on SIGTERM.
func TestSdNotify(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	up := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.2:0"))
	sock := testsupport.NewNotifySocket(t)
	listen := freeAddr(t)
	cfg := writeFile(t, "spartan.json", fmt.Sprintf(`{"listen": [%q], "upstreams": [%q], "metrics": ""}`, listen, up.Addr()))
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Env = append(os.Environ(), sock.Env(), "WATCHDOG_USEC=1000000")
	p := testsupport.StartCmd(t, cmd)

	ready := sock.WaitForMessage(t, 0, waitLong, "READY=1")
	status := sock.Messages()[ready+1]
	require.True(t, strings.HasPrefix(status, "STATUS=serving "+listen+"; upstreams healthy 1/1; cache 0 entries; zone spartan. serial 1"), status)
	i := sock.WaitForMessage(t, ready, waitLong, "WATCHDOG=1")
	sock.WaitForMessage(t, i+1, waitLong, "WATCHDOG=1")

	// systemctl reload: RELOADING=1, then READY=1 again.
	require.NoError(t, p.Signal(syscall.SIGHUP))
	r := sock.WaitForMessage(t, i, waitLong, "RELOADING=1")
	sock.WaitForMessage(t, r, waitLong, "READY=1")

	require.NoError(t, p.Signal(syscall.SIGTERM))
	sock.WaitForMessage(t, r, waitLong, "STOPPING=1")
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	code, err := p.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, code)
}

// TestWatchdogStopsWhenQueryPathFails runs spartan in a network namespace
// on two addresses of the node interface made by systemd/spartan-iface.
// READY=1 waits until both are reachable: the second is added only after
// spartan has started (IP_FREEBIND binds it anyway). Then that second
// address is deleted: the process is alive and the first listener still
// answers, but one listener is no longer reachable, as after NodeLocal
// DNSCache's interface removal. The self-query fails, so WATCHDOG=1 stops
// (systemd would restart it); once spartan-iface repairs the interface,
// pings resume.
func TestWatchdogStopsWhenQueryPathFails(t *testing.T) {
	ns := testsupport.NewNetNS(t)
	bin := testsupport.BuildBinary(t, pkg)
	iface, err := filepath.Abs("../../systemd/spartan-iface")
	require.NoError(t, err)
	runIface := func(action, addrs string) {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		cmd := ns.Command(ctx, iface, action)
		cmd.Env = append(os.Environ(), "SPARTAN_IFACE=spartan", "SPARTAN_ADDRESSES="+addrs)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "spartan-iface %s: %s", action, out)
	}
	const first, second = "192.0.2.53", "192.0.2.54"
	runIface("up", first)

	sock := testsupport.NewNotifySocket(t)
	cfg := writeFile(t, "spartan.json", fmt.Sprintf(`{"listen": ["%s:53", "%s:53"], "upstreams": ["192.0.2.99"], "metrics": ""}`, first, second))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := ns.Command(ctx, bin, "-config", cfg)
	cmd.Env = append(os.Environ(), sock.Env(), "WATCHDOG_USEC=1000000")
	p := testsupport.StartCmd(t, cmd)

	// Not ready while the second address is missing.
	wctx, wcancel := context.WithTimeout(ctx, waitLong)
	defer wcancel()
	require.NoError(t, p.WaitOutput(wctx, "waiting for the self-query to succeed before reporting ready"))
	require.Contains(t, p.Output(), "self-query udp "+second+":53")
	require.NotContains(t, sock.Messages(), "READY=1")
	runIface("up", first+" "+second)
	ready := sock.WaitForMessage(t, 0, waitLong, "READY=1")
	i := sock.WaitForMessage(t, ready, waitLong, "WATCHDOG=1")
	sock.WaitForMessage(t, i+1, waitLong, "WATCHDOG=1")

	ns.Run(t, "ip", "addr", "del", second+"/32", "dev", "spartan")
	bad := sock.WaitFor(t, i, waitLong, func(m string) bool { return strings.HasPrefix(m, "STATUS=unhealthy: self-query udp "+second+":53") })
	// The first listener still answers, over UDP and TCP.
	for _, args := range [][]string{{"ready.spartan", "+short"}, {"+tcp", "ready.spartan", "+short"}} {
		out, err := ns.Dig(t, first+":53", args...)
		require.NoError(t, err)
		require.Contains(t, out, "127.0.0.1")
	}
	// Three watchdog intervals (WatchdogSec=1s, checks every 500ms) with
	// one listener unreachable: not one ping.
	time.Sleep(3 * time.Second)
	for _, m := range sock.Messages()[bad:] {
		require.NotEqual(t, "WATCHDOG=1", m, "pinged while the self-query fails")
	}
	require.False(t, p.Exited())

	runIface("up", first+" "+second)
	sock.WaitForMessage(t, bad, waitLong, "WATCHDOG=1")
	stopGracefully(t, p)
	sock.WaitForMessage(t, bad, waitLong, "STOPPING=1")
	require.Contains(t, p.Output(), "self-query failed: withholding watchdog pings")
	require.Contains(t, p.Output(), "self-query succeeds again")
}

// TestRefusedReloadKeepsCache: during an upstream outage a SIGHUP with an
// invalid configuration is refused and leaves the cache alone, so a name
// cached before the outage still resolves. A SIGHUP that is accepted
// flushes the cache.
func TestRefusedReloadKeepsCache(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	up := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.2:0"))
	listen := freeAddr(t)
	valid := fmt.Sprintf(`{"listen": [%q], "upstreams": [%q], "metrics": ""}`, listen, up.Addr())
	cfg := writeFile(t, "spartan.json", valid)
	p := testsupport.StartProcess(t, bin, "-config", cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "msg=ready"))
	ip := testsupport.DefaultIP.String()

	out, err := testsupport.Dig(t, listen, "www.example.com", "A", "+short")
	require.NoError(t, err)
	require.Contains(t, out, ip)
	up.Stop() // the outage: every miss now fails

	for _, step := range []struct {
		name, config, log, want string
		flushed                 bool
	}{
		{"invalid configuration refused, cache kept", `{"listen": [], "bogus": 1}`, "configuration reload refused", ip, false},
		{"valid configuration accepted, cache flushed", valid, "upstream table swapped", "status: SERVFAIL", true},
	} {
		require.NoError(t, os.WriteFile(cfg, []byte(step.config), 0o644), step.name)
		require.NoError(t, p.Signal(syscall.SIGHUP), step.name)
		waitCount(t, p, step.log, 1)
		out, err := testsupport.Dig(t, listen, "www.example.com", "A")
		require.NoError(t, err, step.name)
		require.Contains(t, out, step.want, step.name)
		require.Equal(t, step.flushed, strings.Contains(p.Output(), "cache flushed"), "%s:\n%s", step.name, p.Output())
	}
	stopGracefully(t, p)
}

// TestShutdownWaitsForReload sends SIGTERM while a reload is in progress:
// the new configuration names an upstreams file that is a FIFO, so the
// reload blocks reading it until the test writes the nameservers. The
// process must not exit before that reload has ended, and it reports the
// reload's end (READY=1) before STOPPING=1.
func TestShutdownWaitsForReload(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	up := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.2:0"))
	sock := testsupport.NewNotifySocket(t)
	listen := freeAddr(t)
	cfg := writeFile(t, "spartan.json", fmt.Sprintf(`{"listen": [%q], "upstreams": [%q], "metrics": ""}`, listen, up.Addr()))
	fifo := filepath.Join(t.TempDir(), "upstreams.conf")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Env = append(os.Environ(), sock.Env())
	p := testsupport.StartCmd(t, cmd)
	ready := sock.WaitForMessage(t, 0, waitLong, "READY=1")

	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`{"listen": [%q], "upstreamsFile": %q, "metrics": ""}`, listen, fifo)), 0o644))
	require.NoError(t, p.Signal(syscall.SIGHUP))
	reloading := sock.WaitForMessage(t, ready, waitLong, "RELOADING=1")
	require.NoError(t, p.Signal(syscall.SIGTERM))
	// A process that does not wait for the reload exits well within
	// this window; one that waits cannot exit before the file is written,
	// however long the window.
	time.Sleep(time.Second)
	require.False(t, p.Exited(), "exited with a reload in progress:\n%s", p.Output())
	require.NotContains(t, p.Output(), "spartan stopped")

	// The reload reads the file (a writer opening without blocking
	// fails with ENXIO when the reload has gone) and completes.
	fd, err := syscall.Open(fifo, syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
	require.NoError(t, err, "no reload reading the upstreams file")
	w := os.NewFile(uintptr(fd), fifo)
	_, err = w.WriteString("nameserver 192.0.2.99\n")
	require.NoError(t, err)
	require.NoError(t, w.Close())

	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	code, err := p.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, code, p.Output())
	out := p.Output()
	swapped, stopped := strings.Index(out, "upstream table swapped"), strings.Index(out, "spartan stopped")
	require.True(t, swapped >= 0 && swapped < stopped, "the reload did not end before the process stopped:\n%s", out)
	reloaded := sock.WaitForMessage(t, reloading, waitLong, "READY=1")
	require.Less(t, reloaded, sock.WaitForMessage(t, reloading, waitLong, "STOPPING=1"))
}

// TestReadyEndpoint checks /ready on the binary: ready with a healthy
// upstream, not ready once every "." upstream is dead and nothing is
// cached, ready again when a warm cache can serve through the outage.
// An upstream counts as dead once its failures have made it unhealthy:
// it is stopped, so every leg to it fails at once (port unreachable).
// The failed queries leave cached SERVFAILs behind (default
// servFailTTL): they do not make the cache warm.
func TestReadyEndpoint(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	for _, tc := range []struct {
		name       string
		warm, dead bool
		code       int
		body       string
	}{
		{"healthy upstream, cold cache", false, false, http.StatusOK, "ready\n"},
		{"dead upstream, cold cache", false, true, http.StatusServiceUnavailable, `not ready: no healthy upstream in the "." group and no answer in the cache` + "\n"},
		{"dead upstream, warm cache", true, true, http.StatusOK, "ready\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.2:0"))
			listen, metricsAddr := freeAddr(t), freeAddr(t)
			cfg := writeFile(t, "spartan.json", fmt.Sprintf(`{"listen": [%q], "upstreams": [%q], "metrics": %q}`,
				listen, up.Addr(), metricsAddr))
			p := testsupport.StartProcess(t, bin, "-config", cfg)
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			require.NoError(t, p.WaitOutput(ctx, "msg=ready"))
			if tc.warm {
				out, err := testsupport.Dig(t, listen, "www.example.com", "A", "+short")
				require.NoError(t, err)
				require.Contains(t, out, testsupport.DefaultIP.String())
			}
			if tc.dead {
				up.Stop()
				healthy := func() float64 {
					return testsupport.Scrape(t, "http://"+metricsAddr+"/metrics").Must(t, "spartan_upstream_healthy", "upstream", up.Addr())
				}
				// Misses for names never asked before, until the
				// upstream is unhealthy, then a few more so that the
				// failure score stays high while /ready is read.
				for i := 0; healthy() != 0; i++ {
					require.Less(t, i, 100, "upstream still healthy after %d failed queries", i)
					_, err := testsupport.Dig(t, listen, fmt.Sprintf("miss%d.example.com", i), "A")
					require.NoError(t, err)
				}
				for i := range 3 {
					_, err := testsupport.Dig(t, listen, fmt.Sprintf("more%d.example.com", i), "A")
					require.NoError(t, err)
				}
			}
			resp, err := http.Get("http://" + metricsAddr + "/ready")
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, tc.code, resp.StatusCode, string(body))
			require.Equal(t, tc.body, string(body))
			stopGracefully(t, p)
		})
	}
}
