package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/stretchr/testify/require"
)

// TestMain removes the binaries the tests build.
func TestMain(m *testing.M) { os.Exit(testsupport.Main(m)) }

const original = "search example.com\nnameserver 192.0.2.1\n"

func writeResolvConf(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, os.WriteFile(path, []byte(original), 0o644))
	return path
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(badFile, []byte(`{"failAfter": -1}`), 0o644))
	unknown := filepath.Join(dir, "unknown.json")
	require.NoError(t, os.WriteFile(unknown, []byte(`{"intervall": "5s"}`), 0o644))
	// Field names match exactly, as in spartan's configuration.
	wrongCase := filepath.Join(dir, "case.json")
	require.NoError(t, os.WriteFile(wrongCase, []byte(`{"Proxy": ["192.0.2.1"]}`), 0o644))
	nestedCase := filepath.Join(dir, "nested.json")
	require.NoError(t, os.WriteFile(nestedCase, []byte(`{"log": {"Level": "debug"}}`), 0o644))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad proxy", []string{"-proxy", "proxy.local"}, `field proxy[0]: not an IP address or IP:port: "proxy.local"`},
		{"bad upstream", []string{"-upstreams", "192.0.2.1,192.0.2.999"}, `field upstreams[1]`},
		{"bad interval", []string{"-interval", "soon"}, `invalid value "soon" for flag -interval`},
		{"zero interval", []string{"-interval", "0s"}, "field interval: must be positive"},
		{"unknown flag", []string{"-proxies", "192.0.2.1"}, "flag provided but not defined: -proxies"},
		{"file field", []string{"-config", badFile}, badFile + " (with flags applied): field failAfter: must be at least 1"},
		{"file unknown field", []string{"-config", unknown}, unknown + ": field intervall: unknown field"},
		{"missing file", []string{"-config", filepath.Join(dir, "nope.json")}, "nope.json: no such file"},
		{"stray argument", []string{"-once", "extra"}, `unexpected arguments: ["extra"]`},
		{"once and restore", []string{"-once", "-restore"}, "-once and -restore exclude each other"},
		{"bad symlink policy", []string{"-symlink", "keep"}, `field symlink: want replace or follow, got "keep"`},
		{"file field in another case", []string{"-config", wrongCase}, wrongCase + ": field Proxy: unknown field"},
		{"nested file field in another case", []string{"-config", nestedCase}, nestedCase + ": field log.Level: unknown field"},
		{"empty upstream elements", []string{"-upstreams", ",,"}, `invalid value ",," for flag -upstreams: element 1 of 3 is empty`},
		{"trailing comma in upstreams", []string{"-upstreams", "192.0.2.1,"}, `for flag -upstreams: element 2 of 2 is empty`},
		{"empty proxy", []string{"-proxy", ""}, `invalid value "" for flag -proxy: empty list`},
		{"blank proxy element", []string{"-proxy", "192.0.2.1, ,192.0.2.2"}, `for flag -proxy: element 2 of 3 is empty`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Bounded: arguments wrongly accepted would start the watchdog.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			code := run(ctx, tc.args, &stderr)
			require.Equal(t, 2, code, "stderr: %s", stderr.String())
			require.Contains(t, stderr.String(), tc.want)
		})
	}
}

// testWriter sends a process's log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}
