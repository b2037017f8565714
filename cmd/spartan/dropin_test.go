package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

// startDropIn runs the binary as a drop-in Mesos-DNS with the given
// config.json members added to a file naming the fake Mesos master, a
// free loopback DNS port and HTTP port, and returns it once its DNS port
// answers the cluster zone, with that port and the HTTP address.
func startDropIn(t *testing.T, bin string, extra map[string]any) (p *testsupport.Process, dnsAddr, httpAddr string) {
	t.Helper()
	state, err := os.ReadFile(filepath.Join("..", "..", "testdata", "mesos-dns-fake-state.json"))
	require.NoError(t, err)
	mesosMaster := testsupport.NewFakeMesosMaster(t, state)
	port := testsupport.FreePort(t, "127.0.0.1")
	httpPort := testsupport.FreePort(t, "127.0.0.1")
	// Mesos-DNS's own spelling of its fields, mixed case included.
	file := map[string]any{
		"masters": []string{mesosMaster.Addr()}, "refreshSeconds": 60, "ttl": 60,
		"domain": "mesos", "listener": "127.0.0.1", "port": port,
		"HTTPListener": "127.0.0.1", "httpport": httpPort, "httpon": true, "dnson": true,
		"IPSources": []string{"netinfo", "mesos", "host"},
	}
	for k, v := range extra {
		file[k] = v
	}
	data, err := json.Marshal(file)
	require.NoError(t, err)
	p = testsupport.StartCmd(t, exec.Command(bin, "-mesos-dns-config", writeFile(t, "config.json", string(data))))
	dnsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	httpAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "spartan serving"), p.Output())
	q := new(dns.Msg)
	q.SetQuestion("leader.mesos.", dns.TypeA)
	require.Eventually(t, func() bool {
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(q, dnsAddr)
		return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0
	}, 20*time.Second, 20*time.Millisecond, p.Output())
	return p, dnsAddr, httpAddr
}

// ask sends name/qtype to addr over network and returns the reply.
func ask(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	r, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(q, addr)
	require.NoError(t, err)
	return r
}

// TestMesosDNSDropIn runs `spartan -mesos-dns-config config.json` over
// real sockets: the port in the file answers a cluster name
// authoritatively, forwards an external name to the file's resolvers
// (externalOn) and, with externalOn false, answers it REFUSED, as
// Mesos-DNS does (resolver.HandleNonMesos and resolver.rcode in
// mesosphere/mesos-dns). Nothing else is bound: no proxy, no metrics.
func TestMesosDNSDropIn(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	resolver := testsupport.StartUpstream(t)

	p, dnsAddr, httpAddr := startDropIn(t, bin, map[string]any{
		"resolvers": []string{resolver.Addr()}, "externalon": true, "timeout": 2,
	})
	for _, network := range []string{"udp", "tcp"} {
		r := ask(t, network, dnsAddr, "big-dog.marathon.mesos.", dns.TypeA)
		require.Equal(t, dns.RcodeSuccess, r.Rcode, network)
		require.True(t, r.Authoritative)
		require.True(t, r.RecursionAvailable, "recurseOn defaults to true in Mesos-DNS")
		require.Len(t, r.Answer, 1)
		require.Equal(t, "1.2.3.11", r.Answer[0].(*dns.A).A.String(), "the golden record")

		r = ask(t, network, dnsAddr, "www.example.com.", dns.TypeA)
		require.Equal(t, dns.RcodeSuccess, r.Rcode, network)
		require.False(t, r.Authoritative)
		require.Len(t, r.Answer, 1)
		require.Equal(t, testsupport.DefaultIP.String(), r.Answer[0].(*dns.A).A.String())
	}
	require.Equal(t, 2, resolver.Queries(), "only the external name reached the resolver")
	var apiCfg map[string]any
	require.NoError(t, json.Unmarshal([]byte(httpGet(t, "http://"+httpAddr+"/v1/config")), &apiCfg))
	require.Equal(t, true, apiCfg["ExternalOn"])
	require.NotContains(t, p.Output(), "metrics", "no metrics port")
	stopCleanly(t, p)

	p, dnsAddr, _ = startDropIn(t, bin, map[string]any{
		"resolvers": []string{resolver.Addr()}, "externalon": false,
	})
	for _, network := range []string{"udp", "tcp"} {
		r := ask(t, network, dnsAddr, "www.example.com.", dns.TypeA)
		require.Equal(t, dns.RcodeRefused, r.Rcode, network)
		r = ask(t, network, dnsAddr, "big-dog.marathon.mesos.", dns.TypeA)
		require.Equal(t, dns.RcodeSuccess, r.Rcode, network)
	}
	require.Equal(t, 2, resolver.Queries(), "externalOn false forwards nothing")
	stopCleanly(t, p)
}

// TestPrintConfig: -print-config prints the spartan configuration a
// Mesos-DNS file means, the golden one of the config package, and a
// file Mesos-DNS itself would refuse exits 2 naming the field.
func TestPrintConfig(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "mesos-dns")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-mesos-dns-config", filepath.Join(dir, "configuration-parameters.json"), "-print-config"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	want, err := os.ReadFile(filepath.Join(dir, "configuration-parameters.spartan.json"))
	require.NoError(t, err)
	require.Equal(t, string(want), stdout.String())

	// The printed configuration runs as a spartan configuration file.
	stdout.Reset()
	code = run(t.Context(), []string{"-config", writeFile(t, "spartan.json", string(want)), "-print-config"}, &stdout, io.Discard)
	require.Equal(t, 0, code)
	require.Equal(t, string(want), stdout.String())

	stderr.Reset()
	bad := writeFile(t, "bad.json", `{"masters": ["192.0.2.1:5050"], "IPSources": ["rkt"]}`)
	code = run(t.Context(), []string{"-mesos-dns-config", bad, "-print-config"}, io.Discard, &stderr)
	require.Equal(t, 2, code)
	require.Contains(t, stderr.String(), "mesos-dns config "+bad+`: field IPSources[0]: invalid IP source "rkt"`)

	stderr.Reset()
	code = run(t.Context(), []string{"-mesos-dns-config", bad, "-config", bad}, io.Discard, &stderr)
	require.Equal(t, 2, code)
	require.Contains(t, stderr.String(), "exclusive")
}
