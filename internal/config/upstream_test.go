package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

func TestParseUpstream(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // normalized; "" means an error containing err
		err  string
	}{
		{in: "192.0.2.1", want: "192.0.2.1:53"},
		{in: "192.0.2.1:5353", want: "192.0.2.1:5353"},
		{in: "2001:db8::1", want: "[2001:db8::1]:53"},
		{in: "tls://192.0.2.1", want: "tls://192.0.2.1:853"},
		{in: "tls://192.0.2.1#dns.example", want: "tls://192.0.2.1:853#dns.example"},
		{in: "tls://192.0.2.1:8853#DNS.Example.", want: "tls://192.0.2.1:8853#dns.example"},
		{in: "tls://[2001:db8::1]:853#one.one.one.one", want: "tls://[2001:db8::1]:853#one.one.one.one"},
		{in: "tls://2001:db8::1#dns.example", want: "tls://[2001:db8::1]:853#dns.example"},
		{in: "tls://", err: "no address"},
		{in: "tls://#dns.example", err: "no address"},
		{in: "tls://dns.example", err: "not an IP address"},
		{in: "tls://192.0.2.1:0#x.example", err: "port 0"},
		{in: "tls://192.0.2.1#", err: "empty server name"},
		{in: "tls://192.0.2.1#192.0.2.1", err: "is an IP address"},
		{in: "tls://192.0.2.1#192.0.2.1.", err: "is an IP address"},
		{in: "tls://192.0.2.1#bad name", err: "not a host name"},
		{in: "tls://192.0.2.1#a..b", err: "not a host name"},
		{in: "tls://192.0.2.1#..", err: "not a host name"},
		{in: "tls://192.0.2.1#.", err: "not a host name"},
		{in: "https://192.0.2.1/dns-query", err: "unknown scheme"},
		{in: "TLS://192.0.2.1", err: "unknown scheme"},
		{in: "192.0.2.1#dns.example", err: "not an IP"},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := NormalizeUpstream(c.in, DNSPort)
			if c.want == "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
			again, err := NormalizeUpstream(got, DNSPort)
			require.NoError(t, err)
			require.Equal(t, got, again, "normalized form is stable")
		})
	}
}

// The root group and zone groups take TLS upstreams, mixed with UDP
// ones; a bad one is reported with its field, and masters take none.
func TestTLSUpstreamFields(t *testing.T) {
	cfg, err := Parse([]byte(`{"upstreams": ["192.0.2.1", "tls://192.0.2.2#dns.example"],
 "zones": {"corp.example": ["tls://10.0.0.1:8853#ns.corp.example", "10.0.0.2"]},
 "masters": ["192.0.2.11"]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"192.0.2.1:53", "tls://192.0.2.2:853#dns.example"}, cfg.Upstreams)
	require.Equal(t, []string{"tls://10.0.0.1:8853#ns.corp.example", "10.0.0.2:53"}, cfg.Zones["corp.example."])
	require.Equal(t, []string{"192.0.2.11:61053"}, cfg.Masters)

	for _, c := range []struct{ conf, field string }{
		{`{"upstreams": ["tls://dns.example"]}`, "upstreams[0]"},
		{`{"upstreams": ["192.0.2.1"], "zones": {"corp.example": ["10.0.0.2", "tls://10.0.0.1#"]}}`, `zones["corp.example"][1]`},
		// Masters serve the cluster zone in master mode: no TLS there.
		{`{"upstreams": ["192.0.2.1"], "masters": ["tls://192.0.2.10#master.mesos"]}`, "masters[0]"},
	} {
		_, err := Parse([]byte(c.conf))
		var fe *FieldError
		require.ErrorAs(t, err, &fe, c.conf)
		require.Equal(t, c.field, fe.Field)
	}
}

// tlsCAFile must be a PEM file of certificates that parse, checked at
// start; without it the system roots are used.
func TestTLSCAFile(t *testing.T) {
	dir := t.TempDir()
	ca := testsupport.NewTestCA(t)
	caPEM, err := os.ReadFile(ca.File)
	require.NoError(t, err)
	leaf := ca.Issue(t, "leaf", testsupport.LeafSpec{DNSNames: []string{"dns.example"}})
	keyPEM, err := os.ReadFile(leaf.KeyFile)
	require.NoError(t, err)
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(data), 0o600))
		return p
	}
	corrupt := strings.Replace(string(caPEM), "\n", "\nAAAA", 2)

	cfg, err := Parse([]byte(`{"upstreams": ["tls://192.0.2.1#dns.example"]}`))
	require.NoError(t, err)
	pool, err := cfg.TLSRoots()
	require.NoError(t, err)
	require.Nil(t, pool, "system roots")

	for _, c := range []struct {
		name, file, err string
	}{
		{"one CA", write("ca.pem", string(caPEM)), ""},
		{"a bundle", write("bundle.pem", string(caPEM)+string(caPEM)), ""},
		{"missing", filepath.Join(dir, "missing.pem"), "no such file"},
		{"empty", write("empty.pem", ""), "no PEM certificate"},
		{"a key", write("key.pem", string(keyPEM)), `"PRIVATE KEY", not a CERTIFICATE`},
		{"not PEM", write("der.pem", "hello"), "not a PEM block"},
		{"corrupt", write("corrupt.pem", corrupt), "certificate 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(`{"upstreams": ["tls://192.0.2.1#dns.example"], "tlsCAFile": "` + c.file + `"}`))
			if c.err != "" {
				var fe *FieldError
				require.ErrorAs(t, err, &fe)
				require.Equal(t, "tlsCAFile", fe.Field)
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			pool, err := cfg.TLSRoots()
			require.NoError(t, err)
			require.NotNil(t, pool)
		})
	}
}

// FuzzParseUpstream: the upstream syntax never panics, and what it
// accepts normalizes to a form that parses back to the same upstream.
func FuzzParseUpstream(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "[2001:db8::1]:53", "tls://192.0.2.1", "tls://192.0.2.1:853#dns.example",
		"tls://[::1]:8853#a.b.c.", "tls://#x", "tls://1.2.3.4#", "udp://1.2.3.4", "tls://fe80::1%eth0#x.example", "tls://[::]:1#..", "tls://0.0.0.0#0.0.0.0."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUpstream(s, DNSPort)
		if err != nil {
			return
		}
		require.True(t, u.Addr.IsValid())
		require.NotZero(t, u.Addr.Port())
		require.True(t, u.TLS || u.ServerName == "")
		back, err := ParseUpstream(u.String(), DNSPort)
		require.NoError(t, err, "%q normalized to %q", s, u.String())
		require.Equal(t, u, back)
		_, perr := netip.ParseAddr(u.ServerName)
		require.True(t, u.ServerName == "" || perr != nil)
	})
}
