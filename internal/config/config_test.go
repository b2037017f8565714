package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseContractExample(t *testing.T) {
	cfg, err := Parse([]byte(`{"listen": ["127.0.0.1:5353"],
 "upstreams": ["127.0.0.2:5301", "127.0.0.3:5302"],
 "zones": {"mesos.": ["127.0.0.4:61053"]}}`))
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:5353"}, cfg.Listen)
	require.Equal(t, []string{"127.0.0.2:5301", "127.0.0.3:5302"}, cfg.Upstreams)
	require.Equal(t, map[string][]string{"mesos.": {"127.0.0.4:61053"}}, cfg.Zones)
	require.Equal(t, 2*time.Second, cfg.RaceTimeout.D())
	require.Equal(t, "mesos.", cfg.ClusterDomain)
	require.Nil(t, cfg.Master)
}

func TestParseDefaultsPortsAndMaster(t *testing.T) {
	cfg, err := Parse([]byte(`{"upstreams": ["192.0.2.1", "2001:db8::1"],
 "masters": ["192.0.2.10"], "raceTimeout": "500ms",
 "master": {"masters": ["192.0.2.10"], "refreshSeconds": 5}}`))
	require.NoError(t, err)
	require.Equal(t, []string{"169.254.20.10:53"}, cfg.Listen)
	require.Equal(t, []string{"192.0.2.1:53", "[2001:db8::1]:53"}, cfg.Upstreams)
	require.Equal(t, []string{"192.0.2.10:61053"}, cfg.Masters)
	require.Equal(t, 500*time.Millisecond, cfg.RaceTimeout.D())
	require.NotNil(t, cfg.Master)
	require.Equal(t, []string{"192.0.2.10:5050"}, cfg.Master.Masters)
	require.Equal(t, 5, cfg.Master.RefreshSeconds)
	require.Equal(t, 60, cfg.Master.TTL)
	require.Equal(t, "mesos.", cfg.Master.Domain)
	require.Equal(t, "ns1.mesos.", cfg.Master.SOAMname)
	require.Equal(t, "root.ns1.mesos.", cfg.Master.SOARname)
	require.Equal(t, []string{"0.0.0.0:61053"}, cfg.Master.Listen)
	require.Equal(t, 0.5, cfg.Master.MaxShrink)
	require.Equal(t, DefaultAllowNets(), cfg.Master.AllowNets)
	require.Equal(t, RRL{ResponsesPerSecond: 1000, Slip: 2, WindowSeconds: 15, IPv4PrefixLength: 24, IPv6PrefixLength: 56,
		Exempt: []string{"127.0.0.0/8", "::1/128"}}, cfg.Master.RRL)
}

// TestMasterGuardFields: a partial "rrl" object keeps the defaults of the
// fields it leaves out; the client networks replace the default list.
func TestMasterGuardFields(t *testing.T) {
	cfg, err := Parse([]byte(`{"master": {"maxShrink": 1, "allowNets": ["192.0.2.0/24"],
		"rrl": {"responsesPerSecond": 0, "exempt": []}}}`))
	require.NoError(t, err)
	require.Equal(t, 1.0, cfg.Master.MaxShrink)
	require.Equal(t, []string{"192.0.2.0/24"}, cfg.Master.AllowNets)
	require.Equal(t, RRL{Slip: 2, WindowSeconds: 15, IPv4PrefixLength: 24, IPv6PrefixLength: 56, Exempt: []string{}}, cfg.Master.RRL)
	// The proxy's list is its own.
	require.Equal(t, DefaultAllowNets(), cfg.AllowNets)
}

func TestParseErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"unknown field", `{"listn": []}`, `field listn: unknown field`},
		{"unknown master field", `{"master": {"mastrs": []}}`, `field master.mastrs: unknown field`},
		{"master wrong type", `{"master": {"ttl": "60"}}`, `field master.ttl: expected int`},
		{"nested bad duration", `{"cache": {"minTTL": "soon"}}`, `field cache.minTTL: not a duration: "soon"`},
		{"bad listen", `{"listen": ["localhost:53"], "upstreams": ["192.0.2.1"]}`, "field listen[0]: not an IP address"},
		{"bad upstream", `{"upstreams": ["192.0.2.1:99999"]}`, "field upstreams[0]"},
		{"empty group", `{"upstreams": ["192.0.2.1"], "zones": {"mesos": []}}`, `field zones["mesos"]: empty upstream group`},
		{"root zone", `{"upstreams": ["192.0.2.1"], "zones": {".": ["192.0.2.2"]}}`, `field zones["."]`},
		{"no upstreams", `{"upstreams": [], "upstreamsFile": ""}`, "field upstreams: empty"},
		{"wrong type", `{"listen": "127.0.0.1:53"}`, "field listen: expected []string"},
		{"bad duration", `{"raceTimeout": "2 seconds"}`, `field raceTimeout: not a duration: "2 seconds"`},
		{"negative timeout", `{"raceTimeout": "-1s"}`, "field raceTimeout: must be positive"},
		{"negative receive buffer", `{"udpReceiveBuffer": -1}`, "field udpReceiveBuffer: must be between 0 (system default) and 1073741824 bytes, got -1"},
		{"negative listener threads", `{"listenerThreads": -1}`, "field listenerThreads: must be between 0 (one per core) and 256, got -1"},
		{"too many listener threads", `{"listenerThreads": 257}`, "field listenerThreads: must be between 0 (one per core) and 256, got 257"},
		{"bad cidr", `{"allowNets": ["10.0.0.0"]}`, "field allowNets[0]: not a CIDR prefix"},
		{"servFailTTL over 1s", `{"cache": {"servFailTTL": "1.5s"}}`, "field cache.servFailTTL: at most 1s (SERVFAIL is a transient failure), got 1.5s"},
		{"servFailTTL in seconds", `{"cache": {"servFailTTL": 30}}`, "field cache.servFailTTL: at most 1s"},
		{"root cluster domain", `{"clusterDomain": "."}`, "field clusterDomain: the root zone cannot be the cluster domain"},
		{"empty cluster domain", `{"clusterDomain": ""}`, "field clusterDomain: empty domain name"},
		{"bad log level", `{"log": {"level": "loud"}}`, "field log.level"},
		{"bad ip source", `{"master": {"IPSources": ["dns"]}}`, "field master.IPSources[0]"},
		{"maxShrink over 1", `{"master": {"maxShrink": 1.5}}`, "field master.maxShrink: must be between 0 and 1"},
		{"negative maxShrink", `{"master": {"maxShrink": -0.1}}`, "field master.maxShrink"},
		{"master bad cidr", `{"master": {"allowNets": ["10.0.0.0/8", "nope"]}}`, `field master.allowNets[1]: not a CIDR prefix: "nope"`},
		{"rrl unknown field", `{"master": {"rrl": {"rate": 5}}}`, "rate: unknown field"},
		{"rrl negative rate", `{"master": {"rrl": {"responsesPerSecond": -1}}}`, "field master.rrl.responsesPerSecond: must be between 0 and 1000000, got -1"},
		{"rrl slip", `{"master": {"rrl": {"slip": 11}}}`, "field master.rrl.slip: must be between 0 and 10"},
		{"rrl window", `{"master": {"rrl": {"windowSeconds": 0}}}`, "field master.rrl.windowSeconds"},
		{"rrl v4 prefix", `{"master": {"rrl": {"ipv4PrefixLength": 33}}}`, "field master.rrl.ipv4PrefixLength"},
		{"rrl v6 prefix", `{"master": {"rrl": {"ipv6PrefixLength": 129}}}`, "field master.rrl.ipv6PrefixLength"},
		{"rrl exempt", `{"master": {"rrl": {"exempt": ["::1"]}}}`, "field master.rrl.exempt[0]: not a CIDR prefix"},
		{"node address with port", `{"nodeAddress": "192.0.2.7:53"}`, `field nodeAddress: not a unicast IP address without zone: "192.0.2.7:53"`},
		{"node address name", `{"nodeAddress": "agent1.example"}`, "field nodeAddress: not a unicast IP address"},
		{"node address unspecified", `{"nodeAddress": "0.0.0.0"}`, "field nodeAddress: not a unicast IP address"},
		{"node address zone", `{"nodeAddress": "fe80::1%eth0"}`, "field nodeAddress: not a unicast IP address without zone"},
		{"trailing data", `{} {}`, "trailing data"},
		{"syntax", `{"listen": [}`, "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestServFailTTLBound(t *testing.T) {
	for _, tc := range []struct {
		json string
		want time.Duration
	}{
		{`{"cache": {"servFailTTL": "1s"}}`, time.Second},
		{`{"cache": {"servFailTTL": "250ms"}}`, 250 * time.Millisecond},
		{`{"cache": {"servFailTTL": 0}}`, 0},
		// A disabled cache is not checked: the value is never used.
		{`{"cache": {"disabled": true, "servFailTTL": "5s"}}`, 5 * time.Second},
	} {
		t.Run(tc.json, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.json))
			require.NoError(t, err)
			require.Equal(t, tc.want, cfg.Cache.ServFailTTL.D())
		})
	}
	path := filepath.Join(t.TempDir(), "spartan.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"cache": {"servFailTTL": "2s"}}`), 0o644))
	_, err := Load(path)
	require.EqualError(t, err, "config "+path+": field cache.servFailTTL: at most 1s (SERVFAIL is a transient failure), got 2s")
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spartan.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"upstreams": ["nope"]}`), 0o644))
	_, err := Load(path)
	require.ErrorContains(t, err, "config "+path+": field upstreams[0]")

	_, err = Load(filepath.Join(t.TempDir(), "missing.json"))
	require.ErrorContains(t, err, "missing.json")
}

// TestNodeAddress: an IP is kept in its canonical form; empty stays empty
// (the proxy then finds the address itself).
func TestNodeAddress(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:DB8::0:7", "2001:db8::7"},
	} {
		cfg, err := Parse([]byte(`{"nodeAddress": "` + tc.in + `"}`))
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, cfg.NodeAddress, tc.in)
	}
}

// TestMasterDomains: the cluster domain and the DC/OS domains, each once.
func TestMasterDomains(t *testing.T) {
	cfg, err := Parse([]byte(`{}`))
	require.NoError(t, err)
	require.Equal(t, []string{"mesos.", "thisdcos.directory.", "thisdcos.global."}, cfg.MasterDomains())
	cfg, err = Parse([]byte(`{"clusterDomain": "ThisDCOS.Directory"}`))
	require.NoError(t, err)
	require.Equal(t, []string{"thisdcos.directory.", "thisdcos.global."}, cfg.MasterDomains())
}
