package proxy

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
			withDCOS(map[string][]string{"mesos.": {"127.0.0.1:61053"}}, "127.0.0.1:61053"), true},
		{"added to the other masters",
			`"listen": ["169.254.20.10:53"], "masters": ["192.0.2.11", "192.0.2.12"], "master": {"listen": ["192.0.2.13:61053"]}`,
			withDCOS(map[string][]string{"mesos.": {"192.0.2.11:61053", "192.0.2.12:61053", "192.0.2.13:61053"}},
				"192.0.2.11:61053", "192.0.2.12:61053", "192.0.2.13:61053"), true},
		{"already listed: unchanged",
			`"listen": ["169.254.20.10:53"], "masters": ["192.0.2.11", "192.0.2.13"], "master": {"listen": ["192.0.2.13:61053"]}`,
			withDCOS(map[string][]string{"mesos.": {"192.0.2.11:61053", "192.0.2.13:61053"}}, "192.0.2.11:61053", "192.0.2.13:61053"), true},
		{"wildcard master listen: loopback of its family",
			`"listen": ["169.254.20.10:53"], "masters": ["192.0.2.11"], "master": {"listen": ["0.0.0.0:61053"]}`,
			withDCOS(map[string][]string{"mesos.": {"192.0.2.11:61053", "127.0.0.1:61053"}}, "192.0.2.11:61053", "127.0.0.1:61053"), true},
		{"wildcard IPv6 master listen",
			`"listen": ["169.254.20.10:53"], "master": {"listen": ["[::]:61053"]}`,
			withDCOS(map[string][]string{"mesos.": {"[::1]:61053"}}, "[::1]:61053"), true},
		{"wildcard master listen: a loopback entry reaches it",
			`"listen": ["169.254.20.10:53"], "masters": ["127.0.0.1"], "master": {"listen": ["0.0.0.0:61053"]}`,
			withDCOS(map[string][]string{"mesos.": {"127.0.0.1:61053"}}, "127.0.0.1:61053"), true},
		{"explicit zone group of the master's domain",
			`"listen": ["127.0.0.1:5353"], "zones": {"dcos.": ["192.0.2.11:61053"]}, "masters": ["192.0.2.20"], "master": {"listen": ["127.0.0.2:7053"], "domain": "dcos."}`,
			withDCOS(map[string][]string{"dcos.": {"192.0.2.11:61053", "127.0.0.2:7053"}, "mesos.": {"192.0.2.20:61053"}},
				"192.0.2.20:61053", "127.0.0.2:7053"), true},
		{"masters serve the DC/OS domains like the cluster domain",
			`"listen": ["169.254.20.10:53"], "masters": ["192.0.2.11", "192.0.2.12"]`,
			withDCOS(map[string][]string{"mesos.": {"192.0.2.11:61053", "192.0.2.12:61053"}}, "192.0.2.11:61053", "192.0.2.12:61053"), true},
		{"a zones entry for a DC/OS domain overrides the masters",
			`"listen": ["169.254.20.10:53"], "masters": ["192.0.2.11"], "zones": {"ThisDCOS.Directory": ["192.0.2.30"]}`,
			map[string][]string{"mesos.": {"192.0.2.11:61053"}, "thisdcos.directory.": {"192.0.2.30:53"}, "thisdcos.global.": {"192.0.2.11:61053"}}, true},
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

// withDCOS adds the DC/OS domains' groups, with addrs, to want.
func withDCOS(want map[string][]string, addrs ...string) map[string][]string {
	want["thisdcos.directory."] = addrs
	want["thisdcos.global."] = addrs
	return want
}

// TestUpstreamsFileDropsLoops reads the root group from a resolv.conf that
// lists the proxy's own address, the host's stub resolver and a real
// resolver: only addresses that cannot lead back to the proxy are kept,
// and each dropped one is logged as a warning naming it.
func TestUpstreamsFileDropsLoops(t *testing.T) {
	const resolvConf = `# written by the watchdog
search example.com
nameserver 169.254.20.10
nameserver 127.0.0.53
nameserver 192.0.2.7
options edns0 trust-ad
`
	for _, tc := range []struct {
		name    string
		listen  string
		kept    []string
		dropped map[string]string // address → reason in the warning
	}{
		{"link-local listener: own address and loopback stub dropped", "169.254.20.10:53",
			[]string{"192.0.2.7:53"},
			map[string]string{"169.254.20.10:53": "own address", "127.0.0.53:53": "loopback resolver"}},
		{"loopback listener (demo): other loopback resolvers kept", "127.0.0.1:53",
			[]string{"169.254.20.10:53", "127.0.0.53:53", "192.0.2.7:53"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolv.conf")
			require.NoError(t, os.WriteFile(path, []byte(resolvConf), 0o644))
			cfg, err := config.Parse([]byte(fmt.Sprintf(`{"listen": [%q], "upstreamsFile": %q, "metrics": ""}`, tc.listen, path)))
			require.NoError(t, err)
			var logs logBuffer
			table, err := BuildTable(&cfg, logs.logger(), nil)
			require.NoError(t, err)
			defer table.Close()
			var got []string
			for _, u := range table.Lookup("www.example.").Upstreams() {
				got = append(got, u.String())
			}
			require.Equal(t, tc.kept, got)

			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			var drops []string
			for _, l := range lines {
				if strings.Contains(l, "upstream dropped") {
					drops = append(drops, l)
				}
			}
			require.Len(t, drops, len(tc.dropped), logs.String())
			for addr, reason := range tc.dropped {
				found := false
				for _, l := range drops {
					if strings.Contains(l, "level=WARN") && strings.Contains(l, "upstream="+addr) && strings.Contains(l, reason) {
						found = true
					}
				}
				require.True(t, found, "no warning for %s (%s) in:\n%s", addr, reason, logs.String())
			}
		})
	}
}

// TestExplicitLoopbackUpstreamsKept checks that a loopback upstream the
// operator wrote in upstreams, zones or masters (a local unbound on
// 127.0.0.2:53) is kept with a warning by a proxy listening elsewhere,
// unlike one read from a resolv.conf, while the proxy's own listen
// addresses are dropped wherever they are written.
func TestExplicitLoopbackUpstreamsKept(t *testing.T) {
	for _, tc := range []struct {
		name    string
		config  string // spliced into the configuration object
		want    map[string][]string
		kept    []string // warned about: loopback, kept
		dropped []string // warned about: own address, dropped
	}{
		{"the only root upstream, on loopback",
			`"listen": ["169.254.20.10:53"], "upstreams": ["127.0.0.2"]`,
			map[string][]string{".": {"127.0.0.2:53"}}, []string{"127.0.0.2:53"}, nil},
		{"IPv6 loopback beside our own address",
			`"listen": ["169.254.20.10:53"], "upstreams": ["[::1]:5300", "169.254.20.10", "192.0.2.1"]`,
			map[string][]string{".": {"[::1]:5300", "192.0.2.1:53"}}, []string{"[::1]:5300"}, []string{"169.254.20.10:53"}},
		{"zones and masters on loopback",
			`"listen": ["169.254.20.10:53"], "upstreams": ["192.0.2.1"], "zones": {"corp.": ["127.0.0.2", "169.254.20.10:53"]}, "masters": ["127.0.0.3"]`,
			withDCOS(map[string][]string{".": {"192.0.2.1:53"}, "corp.": {"127.0.0.2:53"}, "mesos.": {"127.0.0.3:61053"}}, "127.0.0.3:61053"),
			// The masters' address is warned about in each group it forms.
			[]string{"127.0.0.2:53", "127.0.0.3:61053", "127.0.0.3:61053", "127.0.0.3:61053"}, []string{"169.254.20.10:53"}},
		{"this node's own authoritative server is no warning",
			`"listen": ["169.254.20.10:53"], "upstreams": ["192.0.2.1"], "master": {"listen": ["0.0.0.0:61053"]}`,
			withDCOS(map[string][]string{".": {"192.0.2.1:53"}, "mesos.": {"127.0.0.1:61053"}}, "127.0.0.1:61053"), nil, nil},
		{"a proxy on loopback: no warning",
			`"listen": ["127.0.0.1:53"], "upstreams": ["127.0.0.2", "127.0.0.1"]`,
			map[string][]string{".": {"127.0.0.2:53"}}, nil, []string{"127.0.0.1:53"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(`{"metrics": "", ` + tc.config + `}`))
			require.NoError(t, err)
			var logs logBuffer
			table, err := BuildTable(&cfg, logs.logger(), nil)
			require.NoError(t, err, logs.String())
			defer table.Close()
			got := map[string][]string{}
			for _, g := range table.Groups() {
				for _, u := range g.Upstreams() {
					got[g.Zone()] = append(got[g.Zone()], u.String())
				}
			}
			require.Equal(t, tc.want, got)

			var kept, dropped []string
			for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				_, addr, ok := strings.Cut(l, "upstream=")
				if !ok {
					continue
				}
				addr, _, _ = strings.Cut(addr, " ")
				switch {
				case strings.Contains(l, "upstream on loopback kept"):
					kept = append(kept, addr)
				case strings.Contains(l, "upstream dropped"):
					dropped = append(dropped, addr)
				}
			}
			require.ElementsMatch(t, tc.kept, kept, logs.String())
			require.ElementsMatch(t, tc.dropped, dropped, logs.String())
		})
	}
}

// TestNoUsableUpstreamIsAConfigError checks that a group left empty by the
// dropping rules is reported as a *config.FieldError (a configuration
// error: exit status 2), naming the field it came from.
func TestNoUsableUpstreamIsAConfigError(t *testing.T) {
	stub := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, os.WriteFile(stub, []byte("nameserver 127.0.0.53\n"), 0o644))
	for _, tc := range []struct {
		name, config, want string
	}{
		{"own address only", `"listen": ["169.254.20.10:53"], "upstreams": ["169.254.20.10"]`,
			"field upstreams: upstreams: no usable upstream for the root zone"},
		{"stub only, from a file", fmt.Sprintf(`"listen": ["169.254.20.10:53"], "upstreamsFile": %q`, stub),
			"field upstreamsFile: " + stub + ": no usable upstream for the root zone: every one of [127.0.0.53:53] was dropped"},
		{"missing file", `"listen": ["169.254.20.10:53"], "upstreamsFile": "/nonexistent/resolv.conf"`,
			"field upstreamsFile: open /nonexistent/resolv.conf"},
		{"zone of own addresses", `"listen": ["169.254.20.10:53"], "upstreams": ["192.0.2.1"], "zones": {"corp.": ["169.254.20.10"]}`,
			`field zones["corp."]: zone corp.: no usable upstream`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(`{"metrics": "", ` + tc.config + `}`))
			require.NoError(t, err)
			_, err = BuildTable(&cfg, slog.New(slog.DiscardHandler), nil)
			var fe *config.FieldError
			require.ErrorAs(t, err, &fe)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
