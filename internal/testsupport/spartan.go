package testsupport

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SpartanPkg is the import path of the proxy's main package, for
// BuildBinary.
const SpartanPkg = "github.com/spartan-dns/spartan/cmd/spartan"

// SpartanOptions describe one run of the real spartan proxy.
type SpartanOptions struct {
	// Listen lists the host:port addresses served on UDP and TCP.
	Listen []string
	// Upstreams is the root zone's upstream group (host:port).
	Upstreams []string
	// NetNS, when set, runs the proxy inside that namespace ("ip netns
	// exec"), where its addresses must exist.
	NetNS *NetNS
}

// StartSpartan builds the spartan binary (once per test process), starts
// it serving o.Listen with the root zone forwarded to o.Upstreams, the
// metrics endpoint off and info logs, and waits until it logs that it is
// serving. Every call starts a new process, so a test restarts a proxy it
// killed by calling StartSpartan again with the same options. The process
// is killed when the test ends and its output logged if the test failed.
func StartSpartan(t testing.TB, o SpartanOptions) *Process {
	t.Helper()
	bin := BuildBinary(t, SpartanPkg)
	cfg, err := json.Marshal(map[string]any{
		"listen":    o.Listen,
		"upstreams": o.Upstreams,
		"metrics":   "",
		"log":       map[string]string{"level": "info"},
	})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "spartan.json")
	require.NoError(t, os.WriteFile(path, cfg, 0o644))

	var cmd *exec.Cmd
	if o.NetNS != nil {
		cmd = o.NetNS.Command(context.Background(), bin, "-config", path)
	} else {
		cmd = exec.Command(bin, "-config", path)
	}
	p := StartCmd(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "spartan serving"), "spartan on %v did not start:\n%s", o.Listen, p.Output())
	return p
}
