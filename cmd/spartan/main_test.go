package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

// TestMain removes the binaries the tests build.
func TestMain(m *testing.M) { os.Exit(testsupport.Main(m)) }

const pkg = "github.com/spartan-dns/spartan/cmd/spartan"

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// TestEndToEnd builds the binary, runs it with the contract's
// configuration shape and queries it with dig over UDP and TCP.
func TestEndToEnd(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	dead := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.2:0"), testsupport.WithBehavior(testsupport.Blackhole))
	root := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.3:0"))
	master := testsupport.StartUpstream(t, testsupport.WithAddr("127.0.0.4:0"), testsupport.WithHandler(func(req *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		rr, _ := dns.NewRR(req.Question[0].Name + " 5 IN A 192.0.2.44")
		m.Answer = []dns.RR{rr}
		return m
	}))
	listen := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t, "127.0.0.1"))
	cfg := writeFile(t, "spartan.json", fmt.Sprintf(`{"listen": [%q],
 "upstreams": [%q, %q],
 "zones": {"mesos.": [%q]},
 "metrics": "", "log": {"level": "debug"}}`, listen, dead.Addr(), root.Addr(), master.Addr()))
	p := testsupport.StartProcess(t, bin, "-config", cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "spartan serving"))

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"ready over UDP", []string{"ready.spartan", "A", "+short"}, "127.0.0.1"},
		{"ready over TCP", []string{"+tcp", "ready.spartan", "A", "+short"}, "127.0.0.1"},
		{"ns.spartan is the listen address", []string{"ns.spartan", "A", "+short"}, "127.0.0.1"},
		{"root zone over UDP", []string{"www.example.com", "A", "+short"}, "192.0.2.1"},
		{"root zone over TCP", []string{"+tcp", "tcp.example.com", "A", "+short"}, "192.0.2.1"},
		{"cluster zone over UDP", []string{"leader.mesos", "A", "+short"}, "192.0.2.44"},
		{"cluster zone over TCP", []string{"+tcp", "Master.Mesos", "A", "+short"}, "192.0.2.44"},
		{"NXDOMAIN relayed", []string{"host.nx", "A", "+noall", "+comments"}, "status: NXDOMAIN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := testsupport.Dig(t, listen, tc.args...)
			require.NoError(t, err)
			require.Contains(t, out, tc.want)
		})
	}
	require.Equal(t, 3, root.Queries(), "root upstream: www and tcp.example.com, host.nx")
	require.Equal(t, 2, master.Queries())

	require.NoError(t, p.Signal(syscall.SIGTERM))
	code, err := p.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, code, p.Output())
	require.Contains(t, p.Output(), "spartan stopped")
}

func TestBadConfig(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	stubResolvConf := writeFile(t, "resolv.conf", "nameserver 127.0.0.53\n")
	tests := []struct {
		name   string
		config string // file content; "" means a missing file
		flags  []string
		want   []string // substrings of stderr
	}{
		{name: "unknown field", config: `{"listen": ["127.0.0.1:5353"], "upstreams": ["192.0.2.1"], "listne": []}`,
			want: []string{"spartan.json", "field listne", "unknown field"}},
		{name: "bad listen address", config: `{"listen": ["localhost:53"], "upstreams": ["192.0.2.1"]}`,
			want: []string{"spartan.json", "field listen[0]", "not an IP address"}},
		{name: "bad upstream", config: `{"listen": ["127.0.0.1:5353"], "upstreams": ["192.0.2.300"]}`,
			want: []string{"field upstreams[0]"}},
		{name: "empty zone group", config: `{"listen": ["127.0.0.1:5353"], "upstreams": ["192.0.2.1"], "zones": {"mesos.": []}}`,
			want: []string{`field zones["mesos."]`, "empty upstream group"}},
		{name: "bad duration", config: `{"listen": ["127.0.0.1:5353"], "upstreams": ["192.0.2.1"], "raceTimeout": "soon"}`,
			want: []string{"field raceTimeout", "not a duration"}},
		{name: "not JSON", config: `{"listen": `, want: []string{"spartan.json", "invalid JSON"}},
		{name: "missing file", want: []string{"spartan.json", "no such file"}},
		{name: "only a loopback stub in the upstreams file while serving a link-local address",
			config: fmt.Sprintf(`{"listen": ["169.254.20.10:53"], "upstreamsFile": %q, "metrics": ""}`, stubResolvConf),
			want:   []string{"field upstreamsFile", "no usable upstream", "127.0.0.53"}},
		{name: "only our own address as upstream",
			config: `{"listen": ["127.0.0.1:5399"], "upstreams": ["127.0.0.1:5399"], "metrics": ""}`,
			want:   []string{"no usable upstream"}},
		{name: "bad flag value", config: `{"upstreams": ["192.0.2.1"]}`, flags: []string{"-listen", "nope"},
			want: []string{"field listen[0]"}},
		{name: "bad master listen address", config: `{"listen": ["127.0.0.1:5353"], "upstreams": ["192.0.2.1"], "master": {"listen": ["localhost"]}}`,
			want: []string{"spartan.json", "field master.listen[0]", "not an IP address"}},
		{name: "master refresh not positive", config: `{"listen": ["127.0.0.1:5353"], "upstreams": ["192.0.2.1"], "master": {"refreshSeconds": 0}}`,
			want: []string{"spartan.json", "field master.refreshSeconds", "must be positive"}},
		{name: "unknown master field", config: `{"listen": ["127.0.0.1:5353"], "upstreams": ["192.0.2.1"], "master": {"lisen": []}}`,
			want: []string{"spartan.json", "field master.lisen", "unknown field"}},
		{name: "bad master IP source", config: `{"listen": ["127.0.0.1:5353"], "upstreams": ["192.0.2.1"], "master": {"IPSources": ["dns"]}}`,
			want: []string{"spartan.json", "field master.IPSources[0]", `got "dns"`}},
		{name: "bad log level flag", config: `{"upstreams": ["192.0.2.1"]}`, flags: []string{"-log-level", "loud"},
			want: []string{"field log.level"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spartan.json")
			if tc.config != "" {
				require.NoError(t, os.WriteFile(path, []byte(tc.config), 0o644))
			}
			p := testsupport.StartProcess(t, bin, append([]string{"-config", path}, tc.flags...)...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code, err := p.Wait(ctx)
			require.NoError(t, err)
			require.Equal(t, 2, code, p.Output())
			for _, w := range tc.want {
				require.Contains(t, p.Stderr(), w)
			}
		})
	}
}

// TestRuntimeErrorAtStart runs the binary on a port that is taken: it
// says what failed (not "usage:") and exits with status 1, a runtime
// error, where a configuration error exits with 2 (TestBadConfig).
func TestRuntimeErrorAtStart(t *testing.T) {
	bin := testsupport.BuildBinary(t, pkg)
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer udp.Close()
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer tcp.Close()
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t, "127.0.0.1")) }
	for _, tc := range []struct {
		name, config, taken string
	}{
		{"UDP port of the proxy taken", fmt.Sprintf(`"listen": [%q]`, udp.LocalAddr()), udp.LocalAddr().String()},
		{"TCP port of the proxy taken", fmt.Sprintf(`"listen": [%q]`, tcp.Addr()), tcp.Addr().String()},
		{"master mode's port taken", fmt.Sprintf(`"listen": [%q], "master": {"listen": [%q], "stateFile": "/nonexistent", "http": ""}`, free(), udp.LocalAddr()),
			udp.LocalAddr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "spartan.json", `{"upstreams": ["192.0.2.1"], "metrics": "", `+tc.config+`}`)
			p := testsupport.StartProcess(t, bin, "-config", path)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code, err := p.Wait(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, code, p.Output())
			require.NotContains(t, p.Stderr(), "usage")
			var last string
			for l := range strings.Lines(p.Stderr()) {
				last = strings.TrimSpace(l)
			}
			require.True(t, strings.HasPrefix(last, "spartan: "), "last line %q", last)
			require.Contains(t, last, tc.taken)
			require.Contains(t, last, "bind: address already in use")
		})
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	path := writeFile(t, "spartan.json", `{"listen": ["127.0.0.1:5353"], "upstreams": ["192.0.2.1"], "log": {"level": "info"}}`)
	var stderr bytes.Buffer
	cfg, err := loadConfig([]string{"-config", path, "-listen", "127.0.0.1:5400, 127.0.0.2", "-upstreams", "192.0.2.7,192.0.2.8:5300", "-log-level", "debug"}, &stderr)
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:5400", "127.0.0.2:53"}, cfg.Listen)
	require.Equal(t, []string{"192.0.2.7:53", "192.0.2.8:5300"}, cfg.Upstreams)
	require.Equal(t, "debug", cfg.Log.Level)

	cfg, err = loadConfig([]string{"-demo"}, &stderr)
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:5353"}, cfg.Listen)
	require.Equal(t, "/etc/resolv.conf", cfg.UpstreamsFile)
	require.Empty(t, cfg.Upstreams)

	cfg, err = loadConfig([]string{"-config", path, "-upstreams", " 192.0.2.9 "}, &stderr)
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:5353"}, cfg.Listen, "the file's")
	require.Equal(t, []string{"192.0.2.9:53"}, cfg.Upstreams)

	_, err = loadConfig([]string{"-demo", "-config", path}, &stderr)
	require.ErrorContains(t, err, "exclusive")
	_, err = loadConfig([]string{"extra"}, &stderr)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "unexpected arguments"))
}

// TestEmptyListFlagElements checks that an empty element in a list flag is
// a usage error naming the flag, never silently dropped: "-upstreams ,,"
// used to leave the file's upstreams in place without a word.
func TestEmptyListFlagElements(t *testing.T) {
	path := writeFile(t, "spartan.json", `{"listen": ["127.0.0.1:5353"], "upstreams": ["192.0.2.1"], "metrics": ""}`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-upstreams", ",,"}, `invalid value ",," for flag -upstreams: element 1 of 3 is empty`},
		{[]string{"-upstreams", "192.0.2.7,,192.0.2.8"}, `for flag -upstreams: element 2 of 3 is empty`},
		{[]string{"-upstreams", ""}, `invalid value "" for flag -upstreams: empty list`},
		{[]string{"-listen", ","}, `invalid value "," for flag -listen: element 1 of 2 is empty`},
		{[]string{"-listen", "127.0.0.1:5400, "}, `for flag -listen: element 2 of 2 is empty`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			// Bounded: a flag wrongly accepted would start serving.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			code := run(ctx, append([]string{"-config", path}, tc.args...), io.Discard, &stderr)
			require.Equal(t, 2, code, stderr.String())
			require.Contains(t, stderr.String(), tc.want)
		})
	}
}
