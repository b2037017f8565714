package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(t.Context(), tc.args, &stderr)
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
