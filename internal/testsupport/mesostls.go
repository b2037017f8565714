package testsupport

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// NewFakeMesosMasterTLS is NewFakeMesosMaster serving HTTPS with a
// certificate of its own, and, when principal is set, answering only
// requests carrying those Basic credentials (Mesos with
// --authenticate_http_readonly and http_authenticators=basic); others get
// 401 with a WWW-Authenticate challenge, as Mesos answers them. It
// returns the path of a PEM file holding the certificate authority to
// verify it with, in the test's temporary directory.
func NewFakeMesosMasterTLS(t testing.TB, state []byte, principal, secret string) (*FakeMesosMaster, string) {
	t.Helper()
	m := NewFakeMesosMasterAt(t, "", state)
	// Restart the plain server as a TLS one on a fresh port.
	m.srv.Close()
	handler := http.HandlerFunc(m.serve)
	m.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if principal != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != principal || p != secret {
				w.Header().Set("WWW-Authenticate", `Basic realm="mesos"`)
				http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
				return
			}
		}
		handler(w, r)
	}))
	m.srv.StartTLS()
	ca := filepath.Join(t.TempDir(), "mesos-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.srv.Certificate().Raw})
	require.NoError(t, os.WriteFile(ca, pemBytes, 0o600))
	return m, ca
}
