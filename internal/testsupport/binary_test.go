package testsupport

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStartProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		name   string
		script string
		signal syscall.Signal
		code   int
		stderr string
	}{
		{name: "exit code and stderr", script: "echo out; echo err >&2; exit 3", code: 3, stderr: "err\n"},
		{name: "signal", script: "trap 'echo got term; exit 0' TERM; echo ready; while :; do sleep 0.05; done", signal: syscall.SIGTERM, code: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := StartProcess(t, "/bin/sh", "-c", tc.script)
			if tc.signal != 0 {
				require.NoError(t, p.WaitOutput(ctx, "ready"))
				require.NoError(t, p.Signal(tc.signal))
			}
			code, err := p.Wait(ctx)
			require.NoError(t, err)
			require.Equal(t, tc.code, code, p.Output())
			require.True(t, p.Exited())
			if tc.stderr != "" {
				require.Equal(t, tc.stderr, p.Stderr())
			}
		})
	}
}
