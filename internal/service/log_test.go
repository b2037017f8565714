package service_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/service"
)

func TestLogger(t *testing.T) {
	var st syscall.Stat_t
	require.NoError(t, syscall.Fstat(int(os.Stderr.Fd()), &st))
	journalStream := fmt.Sprintf("%d:%d", st.Dev, st.Ino)

	for _, tc := range []struct {
		name, journal, format string
		want, notWant         []string
	}{
		{"terminal text", "", "text", []string{"time=", "level=WARN msg=\"upstream unhealthy\" addr=127.0.0.2:53"}, []string{"<4>"}},
		{"journal text", journalStream, "text", []string{"<4>level=WARN msg=\"upstream unhealthy\" addr=127.0.0.2:53\n", "<7>level=DEBUG msg=detail\n", "<3>level=ERROR"}, []string{"time="}},
		{"journal json", journalStream, "json", []string{`"level":"WARN","msg":"upstream unhealthy","addr":"127.0.0.2:53"`}, []string{`"time"`, "<4>"}},
		{"other journal stream", "1:1", "text", []string{"time="}, []string{"<4>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tc.journal)
			var buf bytes.Buffer
			log, err := service.NewLogger(&buf, service.LoggerOptions{Level: "debug", Format: tc.format})
			require.NoError(t, err)
			log.With("addr", "127.0.0.2:53").Warn("upstream unhealthy")
			log.Debug("detail")
			log.Error("failed")
			out := buf.String()
			require.Equal(t, 3, strings.Count(out, "\n"), out)
			for _, w := range tc.want {
				require.Contains(t, out, w)
			}
			for _, w := range tc.notWant {
				require.NotContains(t, out, w)
			}
		})
	}
	var buf bytes.Buffer
	log, err := service.NewLogger(&buf, service.LoggerOptions{Level: "warn", Format: "text"})
	require.NoError(t, err)
	log.Info("hidden")
	require.Empty(t, buf.String())
	_, err = service.NewLogger(&buf, service.LoggerOptions{Level: "loud", Format: "text"})
	require.Error(t, err)
	_, err = service.NewLogger(&buf, service.LoggerOptions{Level: "info", Format: "xml"})
	require.Error(t, err)
}
