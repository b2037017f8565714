package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseZKURL follows the syntax Mesos defines in zookeeper::URL::parse
// (apache/mesos src/zookeeper/url.hpp: "zk://", then digest credentials up
// to the last '@', servers "host1:port1,host2:port2", the path from the
// first '/') and Mesos-DNS reads through mesos-go's parseZk
// (detector/zoo/detect.go: net/url with scheme "zk", u.Host split on ',',
// u.Path). The root path is refused as Mesos's MasterDetector::create
// refuses it; a server without a port gets 2181, as go-zookeeper's
// FormatServers gives it.
func TestParseZKURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ZKURL
	}{
		{"zk://10.0.3.11:2181,10.0.3.12:2181,10.0.3.13:2181/mesos", ZKURL{
			Servers: []string{"10.0.3.11:2181", "10.0.3.12:2181", "10.0.3.13:2181"}, Path: "/mesos"}},
		{"zk://master.mesos:2181/mesos", ZKURL{Servers: []string{"master.mesos:2181"}, Path: "/mesos"}},
		{"zk://zk1,zk2:2182/a/b", ZKURL{Servers: []string{"zk1:2181", "zk2:2182"}, Path: "/a/b"}},
		{"ZK://192.0.2.1:2181/mesos", ZKURL{Servers: []string{"192.0.2.1:2181"}, Path: "/mesos"}},
		{"zk://[2001:db8::1]:2181,2001:db8::2/mesos", ZKURL{Servers: []string{"[2001:db8::1]:2181", "[2001:db8::2]:2181"}, Path: "/mesos"}},
		{"zk://mesos:s3cret@192.0.2.1:2181/mesos", ZKURL{Servers: []string{"192.0.2.1:2181"}, Path: "/mesos", User: "mesos", Password: "s3cret"}},
		// The credentials end at the last '@', so a password may hold one.
		{"zk://u:p@ss@192.0.2.1:2181/mesos", ZKURL{Servers: []string{"192.0.2.1:2181"}, Path: "/mesos", User: "u", Password: "p@ss"}},
		{"zk://u:@192.0.2.1/mesos", ZKURL{Servers: []string{"192.0.2.1:2181"}, Path: "/mesos", User: "u"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseZKURL(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			again, err := ParseZKURL(strings.Replace(got.String(), ":xxxxx@", ":"+got.Password+"@", 1))
			require.NoError(t, err)
			require.Equal(t, got, again)
		})
	}
}

func TestParseZKURLErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.3.11:2181/mesos", `no "zk://" at the start`},
		{"http://10.0.3.11:2181/mesos", `no "zk://" at the start`},
		{"zk://10.0.3.11:2181", "no path"},
		{"zk://10.0.3.11:2181/", `path "/" is the ZooKeeper root`},
		{"zk://10.0.3.11:2181/mesos/", `ends with '/'`},
		{"zk://10.0.3.11:2181//mesos", "empty element"},
		{"zk://10.0.3.11:2181/mesos/../x", "relative element"},
		{"zk://10.0.3.11:2181/mes\x00os", "character ZooKeeper refuses"},
		{"zk:///mesos", "no ZooKeeper server"},
		{"zk://a:1,,b:2/mesos", "server 2: empty server"},
		{"zk://a:99999/mesos", `server 1: bad port "99999"`},
		{"zk://a:0/mesos", `bad port "0"`},
		{"zk://a:/mesos", `bad port ""`},
		{"zk://a_b:2181/mesos", "not an IP address or host name"},
		{"zk://[fe80::1%eth0]:2181/mesos", "IPv6 zone"},
		{"zk://user@a:2181/mesos", "credentials must be user:password"},
		{"zk://:pw@a:2181/mesos", "credentials must be user:password"},
		{"zk://a:2181/mesos?x=1", "no query or fragment"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseZKURL(tc.in)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestMasterZKValidation: master.zk errors name the field; a ZooKeeper URL
// makes master.masters optional, as Mesos-DNS's validateEnabledServices
// asks for masters or zk ("specify Mesos masters or Zookeeper").
func TestMasterZKValidation(t *testing.T) {
	_, err := Parse([]byte(`{"master": {"zk": "zk://192.0.2.1:2181"}}`))
	require.ErrorContains(t, err, "field master.zk: no path")
	_, err = Parse([]byte(`{"master": {"zkDetectionTimeout": -1}}`))
	require.ErrorContains(t, err, "field master.zkDetectionTimeout: must be between 0")
	_, err = Parse([]byte(`{"master": {"masters": []}}`))
	require.ErrorContains(t, err, "field master.masters: at least one Mesos master (or master.zk) is required")

	cfg, err := Parse([]byte(`{"master": {"masters": [], "zk": "zk://192.0.2.1:2181/mesos", "zkDetectionTimeout": 5}}`))
	require.NoError(t, err)
	require.Equal(t, "zk://192.0.2.1:2181/mesos", cfg.Master.ZK)
	require.Equal(t, 5, cfg.Master.ZKDetectionTimeout)
	require.Empty(t, cfg.Master.Masters)
	cfg, err = Parse([]byte(`{"master": {}}`))
	require.NoError(t, err)
	require.Equal(t, 30, cfg.Master.ZKDetectionTimeout)
	require.Empty(t, cfg.Master.ZK)
}

// FuzzParseZKURL: no input panics the parser, and an accepted URL written
// out again parses to the same servers, path and credentials.
func FuzzParseZKURL(f *testing.F) {
	for _, s := range []string{
		"zk://10.0.3.11:2181,10.0.3.12:2181,10.0.3.13:2181/mesos",
		"zk://mesos:s3cret@zk1,zk2:2182/a/b",
		"zk://[2001:db8::1]:2181/mesos",
		"zk://a:1,,b:2/mesos",
		"zk://u:p@ss@h/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseZKURL(s)
		if err != nil {
			return
		}
		if len(u.Servers) == 0 || !strings.HasPrefix(u.Path, "/") || u.Path == "/" {
			t.Fatalf("accepted %q as %+v", s, u)
		}
		again, err := ParseZKURL(strings.Replace(u.String(), ":xxxxx@", ":"+u.Password+"@", 1))
		if err != nil {
			t.Fatalf("%q parsed as %+v, which does not parse again: %v", s, u, err)
		}
		require.Equal(t, u, again)
	})
}

func TestIsHostName(t *testing.T) {
	long := strings.Repeat("a", 64)
	for s, want := range map[string]bool{
		"zk1": true, "master-1.example.com": true, "example.com.": true, "10.0.0.1": true,
		"": false, ".": false, "a..b": false, "-a": false, "a-": false, "a_b": false,
		long: false, long[:63]: true, "ä.example": false,
	} {
		require.Equal(t, want, IsHostName(s), "%q", s)
	}
}
