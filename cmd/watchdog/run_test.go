//go:build upstreamhelper

// These tests run real DNS servers through testsupport.StartUpstream and
// BuildBinary; they are built with -tags upstreamhelper until that helper
// is part of internal/testsupport.

package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/spartan-dns/spartan/internal/resolvconf"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

func readyServer(t *testing.T, addr string) *testsupport.Upstream {
	return testsupport.StartUpstream(t, testsupport.WithAddr(addr), testsupport.WithHandler(func(req *dns.Msg) *dns.Msg {
		resp := new(dns.Msg)
		resp.SetReply(req)
		if dns.CanonicalName(req.Question[0].Name) == "ready.spartan." {
			resp.Answer = append(resp.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
				A:   net.IPv4(127, 0, 0, 1),
			})
		}
		return resp
	}))
}

func TestOnceAndRestore(t *testing.T) {
	proxy := readyServer(t, "127.0.6.1:53")
	path := writeResolvConf(t)
	args := []string{"-resolv-conf", path, "-proxy", "127.0.6.1", "-timeout", "300ms", "-once"}

	var stderr bytes.Buffer
	require.Equal(t, 0, run(t.Context(), args, &stderr), stderr.String())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	f := resolvconf.Parse(data)
	require.Equal(t, "127.0.6.1", f.Nameservers()[0].String())
	require.Len(t, f.Nameservers(), 1)
	require.Equal(t, []string{"example.com"}, f.Search())

	// One failed check is enough in -once mode: there is no history.
	proxy.Stop()
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
	proxy := readyServer(t, "127.0.6.2:53")
	path := writeResolvConf(t)
	cfgFile := filepath.Join(t.TempDir(), "watchdog.json")
	require.NoError(t, os.WriteFile(cfgFile, []byte(`{"proxy":["127.0.6.99"],"failAfter":2,"recoverAfter":1,"timeout":"300ms"}`), 0o644))

	ctx, cancel := context.WithCancel(t.Context())
	var g errgroup.Group
	g.Go(func() error {
		if code := run(ctx, []string{"-config", cfgFile, "-resolv-conf", path, "-proxy", "127.0.6.2",
			"-upstreams", "192.0.2.7,192.0.2.8:53", "-interval", "50ms"}, testWriter{t}); code != 0 {
			t.Errorf("exit status %d", code)
		}
		return nil
	})
	nameservers := func() string {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		var ns []string
		for _, a := range resolvconf.Parse(data).Nameservers() {
			ns = append(ns, a.String())
		}
		return strings.Join(ns, ",")
	}
	require.Eventually(t, func() bool { return nameservers() == "127.0.6.2" }, 20*time.Second, 10*time.Millisecond)
	proxy.Stop()
	require.Eventually(t, func() bool { return nameservers() == "192.0.2.7,192.0.2.8" }, 20*time.Second, 10*time.Millisecond)
	proxy.Start()
	require.Eventually(t, func() bool { return nameservers() == "127.0.6.2" }, 20*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, g.Wait())
}
