package testsupport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// NetNSPrefix starts the name of every namespace NewNetNS creates. The
// full name is NetNSPrefix, the creating process's PID, a dash and random
// hex, so that a later run can tell a namespace whose test process died
// (and leaked it) from one a concurrently running test binary still uses.
const NetNSPrefix = "spartan-test-"

// NetNS is a network namespace of one test's own, made with "ip netns add"
// under a unique name. Processes run in it with Command see
// /etc/netns/NAME/resolv.conf (EtcFile) as /etc/resolv.conf, which is what
// "ip netns exec" does.
type NetNS struct {
	Name string
}

// sweepOnce makes the first NewNetNS of a test binary remove the
// namespaces earlier runs leaked.
var sweepOnce sync.Once

// NewNetNS creates the namespace with its loopback up and removes it, its
// /etc/netns directory and any process left in it when the test ends. It
// skips the test, saying why, when not root; when "ip netns" is missing or
// does not work here it skips too, or fails under SPARTAN_TEST_STRICT=1
// (SkipOrFail). The first call of a test binary removes namespaces with
// NetNSPrefix left by test processes that no longer exist.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	SkipUnlessRoot(t, "ip netns (network namespaces)")
	ip, err := exec.LookPath("ip")
	if err != nil {
		SkipOrFail(t, "skipping: ip(8) not found (apt-get install iproute2), needed for ip netns")
	}
	sweepOnce.Do(func() {
		for _, name := range SweepLeakedNetNS(time.Now()) {
			t.Logf("removed network namespace %s leaked by an earlier test run", name)
		}
	})
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns := &NetNS{Name: fmt.Sprintf("%s%d-%s", NetNSPrefix, os.Getpid(), hex.EncodeToString(b[:]))}
	if out, err := exec.Command(ip, "netns", "add", ns.Name).CombinedOutput(); err != nil {
		SkipOrFail(t, "skipping: ip netns add failed (no network namespace support here?): %v: %s", err, out)
	}
	t.Cleanup(func() { ns.destroy(t) })
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// legacyNetNSAge is how old a namespace named in the earlier format
// (NetNSPrefix and random hex, no PID) must be before a sweep takes it for
// leaked: its owner cannot be checked, and no test run lasts that long.
const legacyNetNSAge = time.Hour

// SweepLeakedNetNS removes the namespaces under /run/netns named with
// NetNSPrefix whose creating process no longer exists (and those in the
// earlier PID-less format older than an hour at now), together with any
// process still in them and their /etc/netns directory. Namespaces of
// other prefixes, and of test processes still running, are left alone. It
// returns the names removed.
func SweepLeakedNetNS(now time.Time) []string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if !netnsLeaked(name, now) {
			continue
		}
		ns := &NetNS{Name: name}
		if ns.remove() == nil {
			removed = append(removed, name)
		}
	}
	return removed
}

// netnsLeaked reports whether the namespace called name is one of ours
// whose owner is gone.
func netnsLeaked(name string, now time.Time) bool {
	rest, ok := strings.CutPrefix(name, NetNSPrefix)
	if !ok {
		return false
	}
	pidText, _, hasPID := strings.Cut(rest, "-")
	if !hasPID {
		// Earlier format: NetNSPrefix and 8 hex digits.
		if _, err := hex.DecodeString(rest); err != nil || len(rest) != 8 {
			return false
		}
		fi, err := os.Stat(filepath.Join("/run/netns", name))
		return err == nil && now.Sub(fi.ModTime()) > legacyNetNSAge
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return false
	}
	// Signal 0 checks for existence: ESRCH means the process is gone
	// (EPERM would mean it exists under another user).
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func (ns *NetNS) destroy(t testing.TB) {
	if err := ns.remove(); err != nil {
		t.Error(err)
	}
}

// remove kills the processes left in the namespace, deletes it and its
// /etc/netns directory.
func (ns *NetNS) remove() error {
	// Processes a test forgot would keep the namespace's sockets alive.
	if out, err := exec.Command("ip", "netns", "pids", ns.Name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	var errs []error
	if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", ns.Name, err, out))
	}
	if err := os.RemoveAll(ns.EtcDir()); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", ns.EtcDir(), err))
	}
	return errors.Join(errs...)
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
