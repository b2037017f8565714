package config

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden spartan configurations in testdata/mesos-dns")

// noLocal keeps the host's own addresses out of the tests.
var noLocal = MesosDNSOptions{LocalAddrs: []netip.Addr{}}

// TestMesosDNSGolden maps the config.json of Mesos-DNS's documentation
// (docs/docs/configuration-parameters.md), its shipped config.json.sample
// and one written with the keys of the reference notes to the spartan
// configuration each means, as -print-config prints it.
func TestMesosDNSGolden(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "mesos-dns")
	for _, name := range []string{"configuration-parameters", "config.json.sample", "reference"} {
		t.Run(name, func(t *testing.T) {
			res, err := LoadMesosDNS(filepath.Join(dir, name+".json"), noLocal)
			require.NoError(t, err)
			got, err := Marshal(res.Config)
			require.NoError(t, err)
			golden := filepath.Join(dir, name+".spartan.json")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
			// What is printed is a spartan configuration meaning the
			// same.
			again, err := Parse(got)
			require.NoError(t, err)
			out, err := Marshal(again)
			require.NoError(t, err)
			require.Equal(t, string(got), string(out))
		})
	}
}

// TestMesosDNSMapping checks the mapping field by field on the
// documentation's file.
func TestMesosDNSMapping(t *testing.T) {
	res, err := LoadMesosDNS(filepath.Join("..", "..", "testdata", "mesos-dns", "configuration-parameters.json"), noLocal)
	require.NoError(t, err)
	cfg := res.Config
	require.Empty(t, cfg.Listen, "no node-local proxy")
	require.Empty(t, cfg.Metrics, "no port the file does not name")
	m := cfg.Master
	require.NotNil(t, m)
	require.Equal(t, []string{"10.101.160.16:53"}, m.Listen)
	require.Equal(t, "0.0.0.0:8123", m.HTTP)
	require.Equal(t, "mesos.", m.Domain)
	require.Equal(t, []string{"10.101.160.15:5050", "10.101.160.16:5050", "10.101.160.17:5050"}, m.Masters)
	require.Equal(t, "zk://10.101.160.15:2181/mesos", m.ZK)
	require.Equal(t, 30, m.ZKDetectionTimeout)
	require.Equal(t, []string{"169.254.169.254:53"}, m.Resolvers)
	require.Equal(t, map[string][]string{"weave.": {"172.17.0.1:53"}}, m.ZoneResolvers)
	require.Equal(t, 5*time.Second, m.ForwardTimeout.D())
	require.Equal(t, 300, m.StateTimeoutSeconds, "Mesos-DNS's default")
	require.Equal(t, 60, m.RefreshSeconds)
	require.True(t, m.RecursionAvailable, "recurseOn defaults to true")
	require.True(t, m.EnumerationOn)
	require.Equal(t, uint16(1), m.SRVRecordDefaultWeight)
	require.Equal(t, Credentials{Principal: "my-mesos-dns-principal", Secret: "super-secret"}, m.MesosCredentials)
	require.Equal(t, []string{"0.0.0.0/0", "::/0"}, m.AllowNets)
	require.Equal(t, "ns1.mesos.", m.SOAMname)
	require.Equal(t, "root.ns1.mesos.", m.SOARname)
	require.Equal(t, uint32(60), m.SOAMinttl)
	require.Empty(t, res.Ignored)
}

// TestMesosDNSFields covers each field's decoding and Mesos-DNS's rules:
// names in any case, defaults, what it refuses at start, what spartan
// cannot do.
func TestMesosDNSFields(t *testing.T) {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, os.WriteFile(resolv, []byte("nameserver 192.0.2.1\nnameserver 127.0.0.53\nnameserver 192.0.2.9\n"), 0o644))
	opts := MesosDNSOptions{ResolvConf: resolv, LocalAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.53"), netip.MustParseAddr("192.0.2.9")}}
	const base = `"masters": ["192.0.2.10:5050"]`
	for _, tc := range []struct {
		name, file string
		check      func(t *testing.T, r MesosDNSResult)
		err        string
	}{
		{"defaults", `{` + base + `}`, func(t *testing.T, r MesosDNSResult) {
			m := r.Config.Master
			require.Equal(t, []string{"0.0.0.0:53"}, m.Listen)
			require.Equal(t, "0.0.0.0:8123", m.HTTP)
			require.Equal(t, []string{"8.8.8.8:53"}, m.Resolvers, "Mesos-DNS's default resolver")
			require.Equal(t, 60, m.RefreshSeconds)
			require.Equal(t, 60, m.TTL)
			require.Equal(t, "root.ns1.mesos.", m.SOARname)
		}, ""},
		{"names in any case", `{"MASTERS": ["192.0.2.10:5050"], "Port": 5353, "LISTENER": "127.0.0.1", "DNSON": true,
			"HTTPPORT": 9000, "httpListener": "127.0.0.1", "EXTERNALON": false, "srvrecorddefaultweight": 0, "enumerationon": false,
			"recurseon": false, "Domain": "Cluster.Example"}`, func(t *testing.T, r MesosDNSResult) {
			m := r.Config.Master
			require.Equal(t, []string{"127.0.0.1:5353"}, m.Listen)
			require.Equal(t, "127.0.0.1:9000", m.HTTP)
			require.Empty(t, m.Resolvers, "externalOn false: REFUSED")
			require.Equal(t, uint16(0), m.SRVRecordDefaultWeight)
			require.False(t, m.EnumerationOn)
			require.False(t, m.RecursionAvailable)
			require.Equal(t, "cluster.example.", m.Domain)
			require.Equal(t, "cluster.example.", r.Config.ClusterDomain)
			require.Equal(t, "ns1.mesos.", m.SOAMname, "Mesos-DNS's default whatever the domain")
		}, ""},
		{"null keeps the default, last duplicate wins", `{` + base + `, "ttl": null, "port": 1, "port": 5300}`, func(t *testing.T, r MesosDNSResult) {
			require.Equal(t, 60, r.Config.Master.TTL)
			require.Equal(t, []string{"0.0.0.0:5300"}, r.Config.Master.Listen)
		}, ""},
		{"unknown fields are ignored and reported", `{` + base + `, "ns": "ns1", "File": "/x", "colour": 1}`, func(t *testing.T, r MesosDNSResult) {
			require.Equal(t, []string{
				"File: set by Mesos-DNS itself at start, whatever the file says",
				"colour: unknown to Mesos-DNS, which ignores it",
				"ns: unknown to Mesos-DNS, which ignores it",
			}, r.Ignored)
		}, ""},
		{"email is the rname without SOARname", `{` + base + `, "email": "admin@example.com"}`, func(t *testing.T, r MesosDNSResult) {
			require.Equal(t, "admin.example.com.", r.Config.Master.SOARname)
		}, ""},
		{"SOARname wins over email", `{` + base + `, "email": "admin@example.com", "SOARname": "hostmaster@mesos"}`, func(t *testing.T, r MesosDNSResult) {
			require.Equal(t, "hostmaster.mesos.", r.Config.Master.SOARname)
			require.Equal(t, []string{"email: SOARname is set, which Mesos-DNS uses instead"}, r.Ignored)
		}, ""},
		{"SOA minimum is the ttl", `{` + base + `, "ttl": 7, "SOAMinttl": 900}`, func(t *testing.T, r MesosDNSResult) {
			require.Equal(t, uint32(7), r.Config.Master.SOAMinttl)
		}, ""},
		{"zero timeout is 5s", `{` + base + `, "timeout": 0}`, func(t *testing.T, r MesosDNSResult) {
			require.Equal(t, 5*time.Second, r.Config.Master.ForwardTimeout.D())
		}, ""},
		{"empty resolvers read resolv.conf without the host's addresses", `{` + base + `, "resolvers": []}`, func(t *testing.T, r MesosDNSResult) {
			require.Equal(t, []string{"192.0.2.1:53"}, r.Config.Master.Resolvers)
		}, ""},
		{"dnsOn false: HTTP only", `{` + base + `, "dnson": false}`, func(t *testing.T, r MesosDNSResult) {
			require.Empty(t, r.Config.Master.Listen)
			require.Equal(t, "0.0.0.0:8123", r.Config.Master.HTTP)
		}, ""},
		{"httpOn false", `{` + base + `, "httpon": false}`, func(t *testing.T, r MesosDNSResult) {
			require.Empty(t, r.Config.Master.HTTP)
		}, ""},
		{"zk alone", `{"zk": "zk://192.0.2.1:2181/mesos"}`, func(t *testing.T, r MesosDNSResult) {
			require.Empty(t, r.Config.Master.Masters)
			require.Equal(t, "zk://192.0.2.1:2181/mesos", r.Config.Master.ZK)
		}, ""},
		{"https with basic credentials", `{` + base + `, "mesosHTTPSOn": true, "caCertFile": "/etc/ca.pem", "mesosAuthentication": "basic",
			"mesosCredentials": {"PRINCIPAL": "dns", "secret": "s"}}`, func(t *testing.T, r MesosDNSResult) {
			m := r.Config.Master
			require.True(t, m.MesosHTTPSOn)
			require.Equal(t, "/etc/ca.pem", m.CACertFile)
			require.Equal(t, Credentials{Principal: "dns", Secret: "s"}, m.MesosCredentials)
		}, ""},
		{"credentials without basic are not sent", `{` + base + `, "mesosCredentials": {"principal": "dns", "secret": "s"}}`, func(t *testing.T, r MesosDNSResult) {
			require.Equal(t, Credentials{}, r.Config.Master.MesosCredentials)
			require.Len(t, r.Ignored, 1)
		}, ""},
		{"zone resolvers ignored with externalOn false", `{` + base + `, "externalOn": false, "zoneResolvers": {"weave": ["192.0.2.2"]}}`, func(t *testing.T, r MesosDNSResult) {
			require.Empty(t, r.Config.Master.ZoneResolvers)
		}, ""},

		{"both servers off", `{` + base + `, "dnson": false, "httpon": false}`, nil, "field dnsOn: either DNS"},
		{"no masters", `{}`, nil, "field masters: specify Mesos masters or ZooKeeper"},
		{"master host name", `{"masters": ["leader.mesos:5050"]}`, nil, `field masters[0]: "leader.mesos" is a host name`},
		{"master without port", `{"masters": ["192.0.2.10"]}`, nil, "field masters[0]: not host:port"},
		{"duplicate master", `{"masters": ["192.0.2.10:5050", "192.0.2.10:5050"]}`, nil, "field masters[1]: duplicate master"},
		{"bad resolver", `{` + base + `, "resolvers": ["dns.example"]}`, nil, "field resolvers[0]:"},
		{"duplicate resolver", `{` + base + `, "resolvers": ["192.0.2.1", "192.0.2.1:53"]}`, nil, "field resolvers[1]: duplicate"},
		{"zone resolver for the domain", `{` + base + `, "zoneResolvers": {"mesos": ["192.0.2.1"]}}`, nil, `field zoneResolvers["mesos"]: the Mesos domain`},
		{"masked zone resolver", `{` + base + `, "zoneResolvers": {"a.weave": ["192.0.2.1"], "weave": ["192.0.2.2"]}}`, nil, "ambiguous: a.weave is masked by weave"},
		{"empty zone resolver", `{` + base + `, "zoneResolvers": {"weave": []}}`, nil, `field zoneResolvers["weave"]: empty`},
		{"bad IP source", `{` + base + `, "IPSources": ["rkt"]}`, nil, `field IPSources[0]: invalid IP source "rkt"`},
		{"duplicate IP source", `{` + base + `, "IPSources": ["host", "host"]}`, nil, "field IPSources[1]: duplicate"},
		{"no IP source", `{` + base + `, "IPSources": []}`, nil, "field IPSources: empty"},
		{"state timeout", `{` + base + `, "stateTimeoutSeconds": 0}`, nil, "field stateTimeoutSeconds: must be positive"},
		{"bad domain", `{` + base + `, "domain": "me_sos"}`, nil, "field domain: not a valid domain name"},
		{"refresh", `{` + base + `, "refreshSeconds": 0}`, nil, "field refreshSeconds: must be positive"},
		{"listener host name", `{` + base + `, "listener": "ns.example"}`, nil, "field listener: not an IP address"},
		{"port 0", `{` + base + `, "port": 0}`, nil, "field port: must be a port"},
		{"http port", `{` + base + `, "httpport": 70000}`, nil, "field httpPort: must be a port"},
		{"iam", `{` + base + `, "mesosAuthentication": "iam", "IAMConfigFile": "/x"}`, nil, `field mesosAuthentication: "iam"`},
		{"unknown authentication", `{` + base + `, "mesosAuthentication": "kerberos"}`, nil, `field mesosAuthentication: want`},
		{"basic without credentials", `{` + base + `, "mesosAuthentication": "basic"}`, nil, "field MesosCredentials: mesosAuthentication"},
		{"cert without key", `{` + base + `, "CertFile": "/c.pem"}`, nil, "field KeyFile: missing private key"},
		{"truncate bit", `{` + base + `, "SetTruncateBit": false}`, nil, "field SetTruncateBit: false is not supported"},
		{"wrong type", `{` + base + `, "port": "53"}`, nil, "field Port: expected int, got JSON string"},
		{"not an object", `[1]`, nil, "must be an object"},
		{"syntax", `{"port": }`, nil, "invalid JSON at byte"},
		{"negative ttl", `{` + base + `, "ttl": -1}`, nil, "field ttl: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := MapMesosDNS([]byte(tc.file), opts)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			tc.check(t, r)
		})
	}
}

// TestMesosDNSLoadNamesFile: errors name the file.
func TestMesosDNSLoadNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"masters": []}`), 0o644))
	_, err := LoadMesosDNS(p, noLocal)
	require.EqualError(t, err, "mesos-dns config "+p+": field masters: specify Mesos masters or ZooKeeper (zk)")
}
