package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/server"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

// TestMain removes the binaries the tests build.
func TestMain(m *testing.M) { os.Exit(testsupport.Main(m)) }

// units lists every unit file shipped in this directory.
var units = []string{"spartan.service", "spartan.socket", "spartan-iface.service", "spartan-watchdog.service"}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Dir(filepath.Dir(file))
}

// buildBinaries builds cmd/spartan and cmd/watchdog and links them into
// one directory under the names install.sh expects.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, pkg := range map[string]string{
		"spartan":  "github.com/spartan-dns/spartan/cmd/spartan",
		"watchdog": "github.com/spartan-dns/spartan/cmd/watchdog",
	} {
		require.NoError(t, os.Symlink(testsupport.BuildBinary(t, pkg), filepath.Join(dir, name)))
	}
	return dir
}

// stageRoot installs spartan with scripts/install.sh into a fresh root
// (DESTDIR) and adds what systemd-analyze needs to resolve the units'
// dependencies there: the distribution's own units and /bin/kill, used by
// ExecReload=. The units are thus verified exactly as installed, against
// real executables at the paths they name.
func stageRoot(t *testing.T, bins, prefix string) string {
	t.Helper()
	root := t.TempDir()
	cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "install.sh"), bins)
	cmd.Env = append(os.Environ(), "DESTDIR="+root, "PREFIX="+prefix)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "install.sh: %s", out)

	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
			require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(dir)), 0o755))
			out, err := exec.Command("cp", "-a", dir, filepath.Join(root, filepath.Dir(dir))).CombinedOutput()
			require.NoError(t, err, "copying %s: %s", dir, out)
		}
	}
	kill, err := os.ReadFile("/bin/kill")
	require.NoError(t, err, "ExecReload= uses /bin/kill")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "bin", "kill"), kill, 0o755))
	return root
}

// verify runs systemd-analyze verify on units inside root and returns its
// combined output. systemd-analyze exits 0 on many problems it only warns
// about (unknown keys, unparsable values), so any output is a failure.
func verify(t *testing.T, root string, names ...string) (string, error) {
	t.Helper()
	args := append([]string{"verify", "--man=no", "--generators=no", "--root=" + root}, names...)
	var buf bytes.Buffer
	cmd := exec.Command("systemd-analyze", args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0")
	err := cmd.Run()
	return strings.TrimSpace(buf.String()), err
}

func needAnalyze(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		testsupport.SkipOrFail(t, "systemd-analyze not installed (apt-get install systemd); units not verified")
	}
}

func TestUnitsVerifyAsInstalled(t *testing.T) {
	needAnalyze(t)
	bins := buildBinaries(t)
	for _, prefix := range []string{"/usr/local", "/usr"} {
		t.Run(strings.ReplaceAll(prefix, "/", "_"), func(t *testing.T) {
			root := stageRoot(t, bins, prefix)
			unitDir := filepath.Join(prefix, "lib/systemd/system")
			for _, u := range units {
				data, err := os.ReadFile(filepath.Join(root, unitDir, u))
				require.NoError(t, err)
				if prefix != "/usr/local" {
					require.NotContains(t, string(data), "/usr/local/", "%s not rewritten for prefix %s", u, prefix)
				}
			}
			out, err := verify(t, root, units...)
			require.NoError(t, err, "systemd-analyze verify: %s", out)
			require.Empty(t, out, "systemd-analyze verify reported problems")

			// Keep the sandboxing honest: systemd's own exposure score
			// (0 best, 10 worst; threshold in tenths) stays "OK".
			for unit, threshold := range map[string]string{
				"spartan.service": "20", "spartan-iface.service": "30", "spartan-watchdog.service": "30",
			} {
				out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager",
					"--root="+root, "--threshold="+threshold, unit).CombinedOutput()
				require.NoError(t, err, "%s exposure above %s/100:\n%s", unit, threshold, out)
			}
		})
	}
}

// TestVerifyCatchesBrokenUnits shows the check above can fail: a unit with
// an unknown key, a bad value or a missing executable is reported.
func TestVerifyCatchesBrokenUnits(t *testing.T) {
	needAnalyze(t)
	bins := buildBinaries(t)
	root := stageRoot(t, bins, "/usr/local")
	unit := filepath.Join(root, "usr/local/lib/systemd/system/spartan.service")
	orig, err := os.ReadFile(unit)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"unknown key", "Type=notify", "Type=notify\nWatchDogSec=10s", "Unknown key"},
		{"bad value", "ProtectSystem=strict", "ProtectSystem=stricter", "stricter"},
		{"missing binary", "/usr/local/bin/spartan ", "/usr/local/bin/spartan-missing ", "spartan-missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, string(orig), tc.from)
			require.NoError(t, os.WriteFile(unit, []byte(strings.Replace(string(orig), tc.from, tc.to, 1)), 0o644))
			t.Cleanup(func() { require.NoError(t, os.WriteFile(unit, orig, 0o644)) })
			out, _ := verify(t, root, "spartan.service")
			require.Contains(t, out, tc.want)
		})
	}
}

// TestServiceContract checks the settings the rest of the system relies on.
func TestServiceContract(t *testing.T) {
	data, err := os.ReadFile("spartan.service")
	require.NoError(t, err)
	s := string(data)
	for _, want := range []string{
		"Type=notify", "WatchdogSec=", "Restart=always", "NotifyAccess=main",
		"DynamicUser=yes", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "ProtectSystem=strict",
		"NoNewPrivileges=yes", "ExecReload=/bin/kill -HUP $MAINPID",
	} {
		require.Contains(t, s, want)
	}
	// The address must not be removed when the process stops: that runs on
	// every crash and restart too.
	require.NotContains(t, s, "ExecStopPost=")
	iface, err := os.ReadFile("spartan-iface.service")
	require.NoError(t, err)
	require.Contains(t, string(iface), "StopWhenUnneeded=yes")
	require.Contains(t, string(iface), "RemainAfterExit=yes")
}

// unitValues returns the values of key in a unit file, in order.
func unitValues(unit, key string) []string {
	var out []string
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

// parseSize reads a size the way systemd (K, M, G: powers of 1024) or the
// Go runtime (KiB, MiB, GiB) write it.
func parseSize(t *testing.T, v string) int64 {
	t.Helper()
	units := map[string]int64{"K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20, "G": 1 << 30, "GiB": 1 << 30}
	num := strings.TrimRight(v, "KMGiB")
	n, err := strconv.ParseInt(num, 10, 64)
	require.NoError(t, err, "size %q", v)
	mult, ok := units[v[len(num):]]
	require.True(t, ok, "size %q", v)
	return n * mult
}

// TestServiceMemoryMax: spartan.service caps its memory with room for
// everything the process bounds, so the cap only ever ends a leak, and
// tells the Go runtime a limit below the cap so the collector gives way
// before the kernel kills.
func TestServiceMemoryMax(t *testing.T) {
	data, err := os.ReadFile("spartan.service")
	require.NoError(t, err)
	unit := string(data)
	values := unitValues(unit, "MemoryMax")
	require.Len(t, values, 1, "one MemoryMax=")
	memoryMax := parseSize(t, values[0])
	var goLimit int64
	for _, env := range unitValues(unit, "Environment") {
		if v, ok := strings.CutPrefix(env, "GOMEMLIMIT="); ok {
			goLimit = parseSize(t, v)
		}
	}
	// Bounded memory: the cache, master mode's reply memo (32 MiB), and
	// the TCP queries held by the proxy's and master mode's servers.
	bounded := config.Default().Cache.MaxBytes + 32<<20 + 2*server.DefaultTCPHeldBytes
	require.GreaterOrEqual(t, memoryMax, 2*bounded, "MemoryMax= leaves the runtime less than the bounded memory again")
	require.Greater(t, goLimit, bounded, "GOMEMLIMIT below the bounded memory")
	require.Less(t, goLimit, memoryMax, "GOMEMLIMIT must sit under MemoryMax=")
}

// TestWatchdogServiceWritablePaths checks that the watchdog's sandbox
// leaves writable what each symlink policy writes: /etc (temp file and
// rename next to resolv.conf) and, for "-symlink follow" through
// systemd-resolved's link, /run/systemd/resolve, optional ("-") as it
// exists only where resolved runs.
func TestWatchdogServiceWritablePaths(t *testing.T) {
	data, err := os.ReadFile("spartan-watchdog.service")
	require.NoError(t, err)
	var writable []string
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ReadWritePaths="); ok {
			writable = append(writable, strings.Fields(v)...)
		}
	}
	require.Contains(t, string(data), "\nProtectSystem=strict\n")
	for _, want := range []string{"/etc", "-/run/systemd/resolve"} {
		require.Contains(t, writable, want)
	}
}

// TestInstallLayout checks what install.sh puts where under DESTDIR, and
// that a second install keeps configuration an operator has edited.
func TestInstallLayout(t *testing.T) {
	bins := buildBinaries(t)
	root := t.TempDir()
	install := func() string {
		cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "install.sh"), bins)
		cmd.Env = append(os.Environ(), "DESTDIR="+root, "PREFIX=/usr")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "install.sh: %s", out)
		return string(out)
	}
	install()
	for path, mode := range map[string]os.FileMode{
		"usr/bin/spartan":                                 0o755,
		"usr/bin/spartan-watchdog":                        0o755,
		"usr/lib/spartan/spartan-iface":                   0o755,
		"usr/lib/systemd/system/spartan.service":          0o644,
		"usr/lib/systemd/system/spartan.socket":           0o644,
		"usr/lib/systemd/system/spartan-iface.service":    0o644,
		"usr/lib/systemd/system/spartan-watchdog.service": 0o644,
		"etc/spartan/spartan.json":                        0o644,
		"etc/spartan/spartan-master.json":                 0o644,
		"etc/spartan/spartan.env":                         0o644,
		"etc/spartan/upstreams.conf":                      0o644,
	} {
		fi, err := os.Stat(filepath.Join(root, path))
		require.NoError(t, err, path)
		require.Equal(t, mode, fi.Mode().Perm(), path)
	}
	// The installed binaries are the real ones, not links into the build.
	fi, err := os.Lstat(filepath.Join(root, "usr/bin/spartan"))
	require.NoError(t, err)
	require.True(t, fi.Mode().IsRegular())

	edited := filepath.Join(root, "etc/spartan/spartan.json")
	require.NoError(t, os.WriteFile(edited, []byte(`{"listen": ["169.254.20.10:53"]}`), 0o644))
	out := install()
	require.Contains(t, out, "keeping existing")
	data, err := os.ReadFile(edited)
	require.NoError(t, err)
	require.Equal(t, `{"listen": ["169.254.20.10:53"]}`, string(data))
}

// TestSampleConfigsAreValid loads every sample configuration with the
// binary's own validation.
func TestSampleConfigsAreValid(t *testing.T) {
	for _, f := range []string{"spartan.json", "spartan-master.json"} {
		_, err := config.Load(f)
		require.NoError(t, err, f)
	}
}
