package service_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/service"
	"github.com/spartan-dns/spartan/internal/testsupport"
)

func TestReloader(t *testing.T) {
	sock := testsupport.NewNotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", sock.Path)

	var mu sync.Mutex
	var reasons []string
	var observed []error
	valid := true
	release := make(chan struct{})
	r := service.NewReloader(func(ctx context.Context, reason string) (string, error) {
		<-release
		mu.Lock()
		defer mu.Unlock()
		reasons = append(reasons, reason)
		if !valid {
			return "serving config v1", errors.New("config /etc/spartan/spartan.json: field listen: at least one address is required")
		}
		return "serving config v2", nil
	})
	r.Notifier = &service.Notifier{}
	r.Observe = func(err error) { mu.Lock(); observed = append(observed, err); mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()

	// One reload in progress, then a burst of triggers: they merge into
	// one more reload.
	r.Trigger("SIGHUP")
	sock.WaitForMessage(t, 0, 10*time.Second, "RELOADING=1")
	for range 5 {
		r.Trigger("upstreams file changed")
	}
	release <- struct{}{}
	i := sock.WaitForMessage(t, 0, 10*time.Second, "STATUS=serving config v2")
	release <- struct{}{}
	sock.WaitForMessage(t, i+1, 10*time.Second, "STATUS=serving config v2")
	mu.Lock()
	require.Equal(t, []string{"SIGHUP", "upstreams file changed"}, reasons)
	valid = false
	mu.Unlock()

	r.Trigger("SIGHUP")
	release <- struct{}{}
	sock.WaitFor(t, 0, 10*time.Second, func(m string) bool {
		return strings.HasPrefix(m, "STATUS=reload refused (config /etc/spartan/spartan.json: field listen") &&
			strings.HasSuffix(m, "; serving config v1")
	})
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, observed, 3)
	require.NoError(t, observed[0])
	require.NoError(t, observed[1])
	require.Error(t, observed[2])
}
