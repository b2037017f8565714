package testsupport

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDockerResolvConf(t *testing.T) {
	for _, tc := range []struct{ name, host, want string }{
		{"link-local proxy kept",
			"# by the watchdog\nnameserver 169.254.20.10\noptions timeout:1 attempts:3\n",
			"# by the watchdog\nnameserver 169.254.20.10\noptions timeout:1 attempts:3\n"},
		{"loopback stubs dropped",
			"nameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.1\nsearch example.org\n",
			"nameserver 192.0.2.1\nsearch example.org\n"},
		{"only loopback: the public fallback",
			"nameserver 127.0.0.1\noptions edns0",
			"options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, string(DockerResolvConf([]byte(tc.host))))
		})
	}
}
