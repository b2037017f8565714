package proxy

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
)

// TestBuildTableIncludesOwnMaster checks the master-mode rule: the group of
// the generated zone reaches this node's own authoritative server, added
// only when none of the group's addresses already does. It also checks
// which tables serve the cluster domain: one without a group for it makes
// the proxy answer cluster names SERVFAIL rather than send them to the
// root group (TestClusterNamesNeverReachRoot).
func TestBuildTableIncludesOwnMaster(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config string // spliced into the configuration object
		want   map[string][]string
		served bool // ClusterServed: cluster names are forwarded
	}{
		{"no master mode, no masters: no cluster group, cluster names unserved", `"listen": ["127.0.0.1:5353"]`,
			map[string][]string{}, false},
		{"a group below the cluster domain does not serve it",
			`"listen": ["127.0.0.1:5353"], "zones": {"marathon.mesos.": ["192.0.2.11"]}`,
			map[string][]string{"marathon.mesos.": {"192.0.2.11:53"}}, false},
		{"a zones entry for the cluster domain serves it",
			`"listen": ["127.0.0.1:5353"], "zones": {"Mesos": ["192.0.2.11"]}`,
			map[string][]string{"mesos.": {"192.0.2.11:53"}}, true},
		{"a zones entry above the cluster domain serves it",
			`"listen": ["127.0.0.1:5353"], "clusterDomain": "cluster.example.", "zones": {"example.": ["192.0.2.11"]}`,
			map[string][]string{"example.": {"192.0.2.11:53"}}, true},
		{"group created with the loopback master (not dropped as a stub)",
			`"listen": ["127.0.0.1:5353"], "master": {"listen": ["127.0.0.1:61053"]}`,
			map[string][]string{"mesos.": {"127.0.0.1:61053"}}, true},
		{"added to the other masters",
			`"listen": ["169.254.20.10:53"], "masters": ["192.0.2.11", "192.0.2.12"], "master": {"listen": ["192.0.2.13:61053"]}`,
			map[string][]string{"mesos.": {"192.0.2.11:61053", "192.0.2.12:61053", "192.0.2.13:61053"}}, true},
		{"already listed: unchanged",
			`"listen": ["169.254.20.10:53"], "masters": ["192.0.2.11", "192.0.2.13"], "master": {"listen": ["192.0.2.13:61053"]}`,
			map[string][]string{"mesos.": {"192.0.2.11:61053", "192.0.2.13:61053"}}, true},
		{"wildcard master listen: loopback of its family",
			`"listen": ["169.254.20.10:53"], "masters": ["192.0.2.11"], "master": {"listen": ["0.0.0.0:61053"]}`,
			map[string][]string{"mesos.": {"192.0.2.11:61053", "127.0.0.1:61053"}}, true},
		{"wildcard IPv6 master listen",
			`"listen": ["169.254.20.10:53"], "master": {"listen": ["[::]:61053"]}`,
			map[string][]string{"mesos.": {"[::1]:61053"}}, true},
		{"wildcard master listen: a loopback entry reaches it",
			`"listen": ["169.254.20.10:53"], "masters": ["127.0.0.1"], "master": {"listen": ["0.0.0.0:61053"]}`,
			map[string][]string{"mesos.": {"127.0.0.1:61053"}}, true},
		{"explicit zone group of the master's domain",
			`"listen": ["127.0.0.1:5353"], "zones": {"dcos.": ["192.0.2.11:61053"]}, "masters": ["192.0.2.20"], "master": {"listen": ["127.0.0.2:7053"], "domain": "dcos."}`,
			map[string][]string{"dcos.": {"192.0.2.11:61053", "127.0.0.2:7053"}, "mesos.": {"192.0.2.20:61053"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(`{"upstreams": ["192.0.2.1"], "metrics": "", ` + tc.config + `}`))
			require.NoError(t, err)
			table, err := BuildTable(&cfg, slog.New(slog.DiscardHandler), nil)
			require.NoError(t, err)
			defer table.Close()
			got := map[string][]string{}
			for _, g := range table.Groups() {
				if g.Zone() == "." {
					continue
				}
				for _, u := range g.Upstreams() {
					got[g.Zone()] = append(got[g.Zone()], u.String())
				}
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.served, ClusterServed(table, cfg.ClusterDomain))
		})
	}
}
