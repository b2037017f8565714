package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

// TestDemoStopsWithParent runs -demo as the child of a shell, as "go run"
// runs it, in a network namespace of its own (its ports are fixed), kills
// the shell with SIGKILL and checks that the demo then shuts down by
// itself, gracefully.
func TestDemoStopsWithParent(t *testing.T) {
	ns := testsupport.NewNetNS(t)
	bin := testsupport.BuildBinary(t, pkg)
	ns.EtcFile(t, "resolv.conf", []byte("nameserver 127.0.0.53\n"))
	p := testsupport.StartCmd(t, ns.Command(context.Background(), "sh", "-c", `"$0" -demo & echo "demo pid $!"; wait`, bin))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.WaitOutput(ctx, "spartan serving"), p.Output())
	_, after, ok := strings.Cut(p.Output(), "demo pid ")
	require.True(t, ok, p.Output())
	var pid int
	_, err := fmt.Sscanf(after, "%d", &pid)
	require.NoError(t, err)
	// Should the demo outlive its parent, it is killed when the test ends
	// (before the process's own clean-up, which waits for its output).
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	require.NoError(t, p.Signal(syscall.SIGKILL))
	// The shell's output ends only once the demo, which shares it, exits.
	_, err = p.Wait(ctx)
	require.NoError(t, err, "the demo kept running after its parent was killed:\n%s", p.Output())
	require.Contains(t, p.Output(), "spartan stopped", "a graceful shutdown on SIGTERM")
}
