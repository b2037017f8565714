package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/spartan-dns/spartan/internal/resolvconf"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// startProxy starts the real spartan binary serving listen, forwarding to
// a fake upstream of its own.
func startProxy(t *testing.T, listen string) *testsupport.Process {
	t.Helper()
	up := testsupport.StartUpstream(t)
	return testsupport.StartSpartan(t, testsupport.SpartanOptions{Listen: []string{listen}, Upstreams: []string{up.Addr()}})
}

// proxyAddr returns a loopback ip:port free for a spartan to serve.
func proxyAddr(t *testing.T, ip string) string {
	return net.JoinHostPort(ip, strconv.Itoa(testsupport.FreePort(t, ip)))
}

func TestOnceAndRestore(t *testing.T) {
	listen := proxyAddr(t, "127.0.6.1")
	proxy := startProxy(t, listen)
	path := writeResolvConf(t)
	args := []string{"-resolv-conf", path, "-proxy", listen, "-timeout", "300ms", "-once"}

	var stderr bytes.Buffer
	require.Equal(t, 0, run(t.Context(), args, &stderr), stderr.String())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	f := resolvconf.Parse(data)
	require.Equal(t, "127.0.6.1", f.Nameservers()[0].String())
	require.Len(t, f.Nameservers(), 1)
	require.Equal(t, []string{"example.com"}, f.Search())

	// One failed check is enough in -once mode: there is no history.
	proxy.Kill()
	stderr.Reset()
	require.Equal(t, 0, run(t.Context(), args, &stderr), stderr.String())
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "192.0.2.1", resolvconf.Parse(data).Nameservers()[0].String())

	stderr.Reset()
	require.Equal(t, 0, run(t.Context(), []string{"-resolv-conf", path, "-restore"}, &stderr), stderr.String())
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, original, string(data))

	// Nothing saved any more: restore is a no-op that says so.
	stderr.Reset()
	require.Equal(t, 0, run(t.Context(), []string{"-resolv-conf", path, "-restore"}, &stderr), stderr.String())
	require.Contains(t, stderr.String(), "nothing to restore")
}

// TestLongRunning runs the contract's command line until cancelled (the
// SIGTERM path), with settings from a file overridden by flags.
func TestLongRunning(t *testing.T) {
	listen := proxyAddr(t, "127.0.6.2")
	proxy := startProxy(t, listen)
	path := writeResolvConf(t)
	cfgFile := filepath.Join(t.TempDir(), "watchdog.json")
	require.NoError(t, os.WriteFile(cfgFile, []byte(`{"proxy":["127.0.6.99"],"failAfter":2,"recoverAfter":1,"timeout":"300ms"}`), 0o644))

	ctx, cancel := context.WithCancel(t.Context())
	var g errgroup.Group
	g.Go(func() error {
		if code := run(ctx, []string{"-config", cfgFile, "-resolv-conf", path, "-proxy", listen,
			"-upstreams", "192.0.2.7,192.0.2.8:53", "-interval", "50ms"}, testWriter{t}); code != 0 {
			t.Errorf("exit status %d", code)
		}
		return nil
	})
	// nameservers waits until the file names want. The condition runs on
	// a goroutine of its own: it reports through c, never through t.
	nameservers := func(want string) {
		t.Helper()
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			data, err := os.ReadFile(path)
			require.NoError(c, err)
			var ns []string
			for _, a := range resolvconf.Parse(data).Nameservers() {
				ns = append(ns, a.String())
			}
			assert.Equal(c, want, strings.Join(ns, ","))
		}, 20*time.Second, 10*time.Millisecond)
	}
	nameservers("127.0.6.2")
	proxy.Kill()
	nameservers("192.0.2.7,192.0.2.8")
	startProxy(t, listen)
	nameservers("127.0.6.2")
	cancel()
	require.NoError(t, g.Wait())
}
