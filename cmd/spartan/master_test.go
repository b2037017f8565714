package main

import (
	"context"
	"encoding/json"
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

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// digSection returns the lines of one section ("ANSWER", "AUTHORITY",
// "ADDITIONAL") of dig's default output.
func digSection(out, name string) string {
	_, rest, ok := strings.Cut(out, ";; "+name+" SECTION:\n")
	if !ok {
		return ""
	}
	body, _, _ := strings.Cut(rest, "\n\n")
	return body
}

// digFlags returns dig's flags line ("qr aa rd").
func digFlags(out string) string {
	_, rest, ok := strings.Cut(out, ";; flags: ")
	if !ok {
		return ""
	}
	flags, _, _ := strings.Cut(rest, ";")
	return flags
}

func loopbackAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t, "127.0.0.1"))
}

// startMaster runs the binary in master mode beside the proxy, with the
// Mesos masters at mesosAddrs and env added to its environment, and
// returns it once serving, with its proxy, authoritative, API and metrics
// addresses.
func startMaster(t *testing.T, bin string, mesosAddrs []string, env ...string) (p *testsupport.Process, proxyAddr, masterAddr, apiAddr, metricsAddr string) {
	t.Helper()
	return startMasterWith(t, bin, map[string]any{"masters": mesosAddrs, "refreshSeconds": 30}, env...)
}

// startMasterWith is startMaster with master's fields added to the
// "master" object (listen, domain and http are set here).
func startMasterWith(t *testing.T, bin string, master map[string]any, env ...string) (p *testsupport.Process, proxyAddr, masterAddr, apiAddr, metricsAddr string) {
	t.Helper()
	root := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.3:0"))
	proxyAddr, masterAddr, apiAddr, metricsAddr = loopbackAddr(t), loopbackAddr(t), loopbackAddr(t), loopbackAddr(t)
	m := map[string]any{"listen": []string{masterAddr}, "domain": "mesos.", "http": apiAddr}
	for k, v := range master {
		m[k] = v
	}
	// The contract's shape; no "masters"/"zones" for the proxy: master
	// mode adds this node's own authoritative server to mesos.'s group.
	cfg, err := json.Marshal(map[string]any{
		"listen": []string{proxyAddr}, "upstreams": []string{root.Addr()},
		"metrics": metricsAddr, "log": map[string]string{"level": "info"},
		"master": m,
	})
	require.NoError(t, err)
	cmd := exec.Command(bin, "-config", writeFile(t, "spartan.json", string(cfg)))
	cmd.Env = append(os.Environ(), env...)
	p = testsupport.StartCmd(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "spartan serving"), p.Output())
	return p, proxyAddr, masterAddr, apiAddr, metricsAddr
}

func stopCleanly(t *testing.T, p *testsupport.Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.Signal(syscall.SIGTERM))
	code, err := p.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, code, p.Output())
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", url, body)
	return string(body)
}

// TestMasterMode runs the binary with a "master" object against a fake
// Mesos master serving the Mesos-DNS fixture state, and queries the
// authoritative listener, the proxy in front of it, the HTTP API and the
// metrics.
func TestMasterMode(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	state, err := os.ReadFile(filepath.Join("..", "..", "testdata", "mesos-dns-fake-state.json"))
	require.NoError(t, err)
	mesos := testsupport.NewFakeMesosMaster(t, state)
	sock := testsupport.NewNotifySocket(t)
	p, proxyAddr, masterAddr, apiAddr, metricsAddr := startMaster(t, bin, []string{mesos.Addr()}, sock.Env())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "cluster zone updated"), p.Output())

	t.Run("sd_notify STATUS", func(t *testing.T) {
		ready := sock.WaitForMessage(t, 0, 30*time.Second, "READY=1")
		status := sock.Messages()[ready+1]
		require.Regexp(t, `^STATUS=serving `+proxyAddr+`; .*; zone spartan\. serial 1 records 4; zone mesos\. serial \d+ records \d+; master serving `+masterAddr+`;`, status)
	})

	for _, transport := range []string{"+notcp", "+tcp"} {
		for _, tc := range []struct {
			name       string
			args       []string
			status     string
			aa         bool
			answer     []string // substrings of the answer section; nil means empty
			additional []string // substrings of the additional section
			soa        bool     // SOA in authority
		}{
			{name: "task A", args: []string{"nginx.marathon.mesos", "A"}, status: "NOERROR", aa: true,
				answer: []string{"nginx.marathon.mesos.\t60\tIN\tA\t10.3.0.3"}},
			{name: "leader is the fake master", args: []string{"Leader.MESOS", "A"}, status: "NOERROR", aa: true,
				answer: []string{"127.0.0.1"}},
			{name: "SRV with additional", args: []string{"_car-store._tcp.marathon.mesos", "SRV"}, status: "NOERROR", aa: true,
				answer:     []string{"31364 car-store-zinaz-0.marathon.slave.mesos.", "31365 car-store-zinaz-0.marathon.slave.mesos."},
				additional: []string{"car-store-zinaz-0.marathon.slave.mesos.", "1.2.3.11"}},
			{name: "NXDOMAIN with SOA", args: []string{"nope.marathon.mesos", "A"}, status: "NXDOMAIN", aa: true, soa: true},
			{name: "outside the zone", args: []string{"example.com", "A"}, status: "REFUSED"},
		} {
			t.Run(transport+" "+tc.name, func(t *testing.T) {
				out, err := testsupport.Dig(t, masterAddr, append([]string{transport}, tc.args...)...)
				require.NoError(t, err)
				require.Contains(t, out, "status: "+tc.status, out)
				flags := strings.Fields(digFlags(out))
				require.Contains(t, flags, "qr", out)
				require.Equal(t, tc.aa, strings.Contains(" "+digFlags(out)+" ", " aa "), out)
				require.NotContains(t, flags, "ra", "an authority offers no recursion")
				ans := digSection(out, "ANSWER")
				if tc.answer == nil {
					require.Empty(t, ans, out)
				}
				for _, a := range tc.answer {
					require.Contains(t, ans, a, out)
				}
				for _, a := range tc.additional {
					require.Contains(t, digSection(out, "ADDITIONAL"), a, out)
				}
				require.Equal(t, tc.soa, strings.Contains(digSection(out, "AUTHORITY"), "SOA"), out)
			})
		}
	}

	t.Run("the proxy forwards the cluster zone to its own master", func(t *testing.T) {
		for _, tc := range []struct{ args []string }{
			{[]string{"nginx.marathon.mesos", "A", "+short"}},
			{[]string{"+tcp", "nginx.marathon.mesos", "A", "+short"}},
		} {
			out, err := testsupport.Dig(t, proxyAddr, tc.args...)
			require.NoError(t, err)
			require.Equal(t, "10.3.0.3", strings.TrimSpace(out))
		}
		out, err := testsupport.Dig(t, proxyAddr, "liquor-store.marathon.mesos", "A", "+short")
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"1.2.3.11", "1.2.3.12"}, strings.Fields(out))
		// Through the proxy the answer is recursive service, not the
		// master's authority: RA set, AA clear (fresh and from the cache).
		for range 2 {
			out, err = testsupport.Dig(t, proxyAddr, "car-store.marathon.mesos", "A")
			require.NoError(t, err)
			flags := " " + digFlags(out) + " "
			require.Contains(t, flags, " ra ", out)
			require.NotContains(t, flags, " aa ", out)
		}
	})

	t.Run("HTTP API", func(t *testing.T) {
		var v struct{ Service, Version string }
		require.NoError(t, json.Unmarshal([]byte(httpGet(t, "http://"+apiAddr+"/v1/version")), &v))
		require.Equal(t, "spartan", v.Service)
		require.NotEmpty(t, v.Version)
		require.Contains(t, httpGet(t, "http://"+apiAddr+"/v1/hosts/nginx.marathon.mesos"), `"ip": "10.3.0.3"`)
	})

	t.Run("metrics", func(t *testing.T) {
		body := httpGet(t, "http://"+metricsAddr+"/metrics")
		require.Contains(t, body, fmt.Sprintf(`spartan_zone_records{zone="mesos."} %d`, 147+localhostRecords(t)))
		require.Contains(t, body, "spartan_state_polls_total 1")
		require.Contains(t, body, "spartan_state_poll_failures_total 0")
	})

	stopCleanly(t, p)
	require.Contains(t, p.Output(), "spartan stopped")
}

// localhostRecords is how many records the fixture's "no pid" framework
// gets: it is named only by the host name localhost, which the binary
// resolves through the host's resolver as this does, keeping the first
// IPv4 and the first IPv6 address. A host with "::1 localhost" gives two,
// one with only 127.0.0.1 one. Every other record of the fixture's zone
// (147) depends on nothing outside the state.
func localhostRecords(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", "localhost")
	if err != nil {
		return 0
	}
	var v4, v6 int
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			v4 = 1
		} else {
			v6 = 1
		}
	}
	return v4 + v6
}

// TestMasterModeWithoutMesos starts master mode with no Mesos master
// listening: it must serve SOA/NS at the apexes, SERVFAIL below them
// (never an NXDOMAIN agents would cache), and say why.
func TestMasterModeWithoutMesos(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	p, proxyAddr, masterAddr, _, _ := startMaster(t, bin, []string{loopbackAddr(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "no Mesos master reachable"), p.Output())

	out, err := testsupport.Dig(t, masterAddr, "mesos", "SOA")
	require.NoError(t, err)
	require.Contains(t, out, "status: NOERROR")
	require.Contains(t, digFlags(out), "aa")
	require.Contains(t, digSection(out, "ANSWER"), "ns1.mesos. root.ns1.mesos.")
	out, err = testsupport.Dig(t, masterAddr, "+tcp", "mesos", "NS", "+short")
	require.NoError(t, err)
	require.Equal(t, "ns1.mesos.", strings.TrimSpace(out))
	out, err = testsupport.Dig(t, masterAddr, "thisdcos.directory", "SOA", "+short")
	require.NoError(t, err)
	require.Contains(t, out, "ns.spartan. support.mesosphere.com.")
	for _, q := range [][2]string{
		{masterAddr, "nginx.marathon.mesos"}, {masterAddr, "nginx.marathon.autoip.dcos.thisdcos.directory"},
		{proxyAddr, "nginx.marathon.mesos"},
	} {
		out, err = testsupport.Dig(t, q[0], q[1], "A")
		require.NoError(t, err)
		require.Contains(t, out, "status: SERVFAIL", "%s from %s", q[1], q[0])
	}
	stopCleanly(t, p)
}

// TestDemo runs -demo in a network namespace of its own (its ports are
// fixed) and resolves the local zone and the embedded cluster zone through
// the proxy.
func TestDemo(t *testing.T) {
	ns := testsupport.NewNetNS(t)
	bin := testsupport.BuildBinary(t, pkg)
	// Nothing listens there: the demo must start without a working ".".
	ns.EtcFile(t, "resolv.conf", []byte("nameserver 127.0.0.53\n"))
	p := testsupport.StartCmd(t, ns.Command(context.Background(), bin, "-demo"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "cluster zone updated"), p.Output())
	require.NoError(t, p.WaitOutput(ctx, "spartan serving"), p.Output())

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"ready.spartan", "A"}, []string{"127.0.0.1"}},
		{[]string{"leader.mesos", "A"}, []string{"1.2.3.4"}},
		{[]string{"+tcp", "master0.mesos", "A"}, []string{"1.2.3.4"}},
		{[]string{"liquor-store.marathon.mesos", "A"}, []string{"1.2.3.11", "1.2.3.12"}},
		{[]string{"_leader._tcp.mesos", "SRV"}, []string{"0 1 5050 leader.mesos."}},
		// dcos-net's names of the same state, and the node's own.
		{[]string{"liquor-store.marathon.agentip.dcos.thisdcos.directory", "A"}, []string{"1.2.3.11", "1.2.3.12"}},
		{[]string{"thisnode.thisdcos.directory", "A"}, []string{"127.0.0.1"}},
	} {
		out := ns.Run(t, "dig", append([]string{"@127.0.0.1", "-p", "5353", "+time=2", "+tries=1", "+short"}, tc.args...)...)
		require.ElementsMatch(t, tc.want, strings.Split(strings.TrimSpace(out), "\n"), "%v", tc.args)
	}
	out := ns.Run(t, "dig", "@127.0.0.1", "-p", "61053", "+time=2", "+tries=1", "nope.marathon.mesos")
	require.Contains(t, out, "status: NXDOMAIN")
	stopCleanly(t, p)
}

// TestMasterFlag checks what -master means: master mode with the
// master-mode defaults, unless the file has a "master" object.
func TestMasterFlag(t *testing.T) {
	plain := writeFile(t, "plain.json", `{"listen": ["127.0.0.1:5353"], "upstreams": ["192.0.2.1"]}`)
	withMaster := writeFile(t, "master.json", `{"listen": ["127.0.0.1:5353"], "upstreams": ["192.0.2.1"], "clusterDomain": "dcos.",
 "master": {"listen": ["127.0.0.1:7053"], "masters": ["192.0.2.5"], "refreshSeconds": 5}}`)
	defaults := config.DefaultMaster()
	defaults.Domain, defaults.SOAMname, defaults.SOARname = "mesos.", "ns1.mesos.", "root.ns1.mesos."

	for _, tc := range []struct {
		name string
		args []string
		want *config.Master
	}{
		{"no master mode", []string{"-config", plain}, nil},
		{"-master: defaults", []string{"-config", plain, "-master"}, &defaults},
		{"-master: the file's object wins", []string{"-config", withMaster, "-master"}, &config.Master{
			Listen: []string{"127.0.0.1:7053"}, Masters: []string{"192.0.2.5:5050"}, Domain: "dcos.",
			ZKDetectionTimeout: 30, RefreshSeconds: 5, StateTimeoutSeconds: 10, TTL: 60, HTTP: "127.0.0.1:8123",
			IPSources: []string{"netinfo", "mesos", "host"}, SOAMname: "ns1.dcos.", SOARname: "root.ns1.dcos.",
			SOARefresh: 60, SOARetry: 600, SOAExpire: 86400, SOAMinttl: 60,
			MaxShrink: 0.5, AllowNets: config.DefaultAllowNets(), RRL: defaults.RRL,
			SRVRecordDefaultWeight: 1, EnumerationOn: true, ForwardTimeout: defaults.ForwardTimeout,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(tc.args, io.Discard)
			require.NoError(t, err)
			require.Equal(t, tc.want, cfg.Master)
		})
	}

	cfg, cl, err := parseCommandLine([]string{"-demo"}, io.Discard)
	require.NoError(t, err)
	require.True(t, cl.demo)
	require.NotNil(t, cfg.Master)
	require.Equal(t, []string{"127.0.0.1:61053"}, cfg.Master.Listen)
	require.Equal(t, "mesos.", cfg.Master.Domain)
	require.Empty(t, cfg.Master.HTTP)
}
