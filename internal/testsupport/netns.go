package testsupport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// NetNS is a network namespace of one test's own, made with "ip netns add"
// under a unique name. Processes run in it with Command see
// /etc/netns/NAME/resolv.conf (EtcFile) as /etc/resolv.conf, which is what
// "ip netns exec" does.
type NetNS struct {
	Name string
}

// NewNetNS creates the namespace with its loopback up and removes it, its
// /etc/netns directory and any process left in it when the test ends. It
// skips the test, saying why, when not root or when "ip netns" does not
// work here.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root for ip netns (network namespaces)")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("skipping: ip(8) not found, needed for ip netns")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns := &NetNS{Name: "spartan-test-" + hex.EncodeToString(b[:])}
	if out, err := exec.Command(ip, "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Skipf("skipping: ip netns add failed (no network namespace support here?): %v: %s", err, out)
	}
	t.Cleanup(func() { ns.destroy(t) })
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

func (ns *NetNS) destroy(t testing.TB) {
	// Processes a test forgot would keep the namespace's sockets alive.
	if out, err := exec.Command("ip", "netns", "pids", ns.Name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v: %s", ns.Name, err, out)
	}
	if err := os.RemoveAll(ns.EtcDir()); err != nil {
		t.Errorf("remove %s: %v", ns.EtcDir(), err)
	}
}

// EtcDir is /etc/netns/NAME, whose files "ip netns exec" bind-mounts over
// /etc's.
func (ns *NetNS) EtcDir() string { return filepath.Join("/etc/netns", ns.Name) }

// EtcFile writes /etc/netns/NAME/name (creating the directory) and returns
// its path. Processes started afterwards with Command see it as /etc/name.
func (ns *NetNS) EtcFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(ns.EtcDir(), 0o755))
	path := filepath.Join(ns.EtcDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

// Command returns a command running name with args inside the namespace.
func (ns *NetNS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Run runs a command inside the namespace, fails the test when it fails,
// and returns its combined output.
func (ns *NetNS) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ns.Command(ctx, name, args...).CombinedOutput()
	require.NoError(t, err, "ip netns exec %s %s %s: %s", ns.Name, name, strings.Join(args, " "), out)
	return string(out)
}

// AddAddr adds an address (CIDR notation) to the namespace's loopback.
// Use 127.0.0.0/8, 192.0.2.0/24 or 203.0.113.0/24 addresses.
func (ns *NetNS) AddAddr(t testing.TB, cidr string) {
	t.Helper()
	ns.Run(t, "ip", "addr", "add", cidr, "dev", "lo")
}
