package watchdog

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name  string
		json  string
		check func(t *testing.T, c Config)
		err   string
	}{
		{
			name: "defaults",
			json: `{}`,
			check: func(t *testing.T, c Config) {
				require.Equal(t, "/etc/resolv.conf", c.ResolvConf)
				require.Equal(t, []string{"169.254.20.10:53"}, c.Proxy)
				require.Empty(t, c.Upstreams)
				require.Equal(t, 5*time.Second, c.Interval.D())
				require.Equal(t, time.Second, c.Timeout.D())
				require.Equal(t, 3, c.FailAfter)
				require.Equal(t, 2, c.RecoverAfter)
				require.Zero(t, c.RestartAfter)
				require.Equal(t, "spartan.service", c.RestartUnit)
				require.Equal(t, "ready.spartan.", c.ReadyName)
				require.Equal(t, "replace", c.Symlink)
				require.Equal(t, []string{"timeout:1", "attempts:3"}, c.Options)
			},
		},
		{
			name: "everything",
			json: `{"resolvConf":"/tmp/r","proxy":["192.0.2.53","[2001:db8::53]:5353"],"upstreams":["192.0.2.1:53","fe80::1%eth0"],
				"interval":"250ms","timeout":0.5,"failAfter":1,"recoverAfter":4,"restartAfter":"2m","restartUnit":"dns.service",
				"readyName":"Ready.Spartan","symlink":"follow","options":["ndots:2"],"log":{"level":"debug","format":"json"}}`,
			check: func(t *testing.T, c Config) {
				require.Equal(t, []string{"192.0.2.53:53", "[2001:db8::53]:5353"}, c.Proxy)
				require.Equal(t, []string{"192.0.2.1:53", "[fe80::1%eth0]:53"}, c.Upstreams)
				require.Equal(t, 250*time.Millisecond, c.Interval.D())
				require.Equal(t, 500*time.Millisecond, c.Timeout.D())
				require.Equal(t, 2*time.Minute, c.RestartAfter.D())
				require.Equal(t, "ready.spartan.", c.ReadyName)
				require.Equal(t, []string{"proxy [2001:db8::53]:5353: resolv.conf cannot name a port, so clients will ask 2001:db8::53 on port 53"}, c.Warnings())
			},
		},
		{name: "unknown field", json: `{"proxies":[]}`, err: "field proxies: unknown field"},
		{name: "bad duration", json: `{"interval":"soon"}`, err: `field interval: not a duration: "soon"`},
		{name: "bad type", json: `{"failAfter":"3"}`, err: "field failAfter: expected int"},
		{name: "syntax", json: `{"proxy":`, err: "invalid JSON"},
		{name: "trailing", json: `{} {}`, err: "trailing data"},
		{name: "no proxy", json: `{"proxy":[]}`, err: "field proxy: at least one address"},
		{name: "proxy host name", json: `{"proxy":["localhost"]}`, err: `field proxy[0]: not an IP address or IP:port: "localhost"`},
		{name: "upstream port 0", json: `{"upstreams":["192.0.2.1:0"]}`, err: "field upstreams[0]: port 0"},
		{name: "zero interval", json: `{"interval":"0s"}`, err: "field interval: must be positive"},
		{name: "negative timeout", json: `{"timeout":"-1s"}`, err: "field timeout: must be positive"},
		{name: "failAfter 0", json: `{"failAfter":0}`, err: "field failAfter: must be at least 1"},
		{name: "recoverAfter 0", json: `{"recoverAfter":0}`, err: "field recoverAfter: must be at least 1"},
		{name: "negative restart", json: `{"restartAfter":"-1m"}`, err: "field restartAfter: must not be negative"},
		{name: "restart without unit", json: `{"restartAfter":"1m","restartUnit":""}`, err: "field restartUnit: empty"},
		{name: "bad ready name", json: `{"readyName":"a..b"}`, err: "field readyName: not a domain name"},
		{name: "bad symlink", json: `{"symlink":"ignore"}`, err: `field symlink: want replace or follow, got "ignore"`},
		{name: "bad option", json: `{"options":["timeout:1 attempts:3"]}`, err: "field options[0]: not a single resolver option"},
		{name: "empty path", json: `{"resolvConf":""}`, err: "field resolvConf: empty path"},
		{name: "bad log level", json: `{"log":{"level":"loud"}}`, err: "field log.level"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if err == nil {
				err = c.Validate()
			}
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

func TestLoadConfigNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"interval":true}`), 0o644))
	_, err := LoadConfig(path)
	require.ErrorContains(t, err, path+": field interval: not a duration")
	var fe *config.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "interval", fe.Field)
	_, err = LoadConfig(filepath.Join(t.TempDir(), "missing.json"))
	require.ErrorContains(t, err, "missing.json")
}

func TestConfigWarnings(t *testing.T) {
	c := DefaultConfig()
	c.Proxy = []string{"192.0.2.1", "192.0.2.2", "192.0.2.3:53", "192.0.2.3:5353", "192.0.2.4"}
	require.NoError(t, c.Validate())
	require.Equal(t, []string{
		"proxy 192.0.2.3:5353: resolv.conf cannot name a port, so clients will ask 192.0.2.3 on port 53",
		"proxy: 4 addresses, but resolv.conf lists only the first 3",
	}, c.Warnings())
}
