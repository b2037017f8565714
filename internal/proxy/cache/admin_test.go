package cache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

func TestFlushHandler(t *testing.T) {
	c := newTestCache(t, testsupport.NewClock(), nil)
	for _, name := range []string{"a.example.", "b.example."} {
		require.True(t, insert(t, c, testsupport.NewQuery(name, dns.TypeA), testsupport.ReplySpec{Answer: testsupport.ARecords(t, name, 300, 1)}))
		require.True(t, insert(t, c, testsupport.NewQuery(name, dns.TypeAAAA), testsupport.ReplySpec{}))
	}
	srv := httptest.NewServer(c.FlushHandler())
	defer srv.Close()

	tests := []struct {
		name    string
		method  string
		form    url.Values
		code    int
		body    string
		entries int
	}{
		{"GET refused", http.MethodGet, nil, http.StatusMethodNotAllowed, "use POST", 4},
		{"bad name", http.MethodPost, url.Values{"name": {"a..b"}}, http.StatusBadRequest, "flush", 4},
		{"one name", http.MethodPost, url.Values{"name": {"A.example"}}, http.StatusOK, "flushed 2 entries for A.example", 2},
		{"everything", http.MethodPost, nil, http.StatusOK, "flushed 2 entries", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL, strings.NewReader(tt.form.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.code, resp.StatusCode)
			require.Contains(t, string(body), tt.body)
			require.Equal(t, tt.entries, c.Stats().Entries)
		})
	}
}
