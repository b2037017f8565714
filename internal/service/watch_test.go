package service_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spartan-dns/spartan/internal/service"
)

func TestFileWatcherChanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	require.NoError(t, os.WriteFile(path, []byte("nameserver 127.0.0.2\n"), 0o644))
	w := service.NewFileWatcher(path)

	for _, step := range []struct {
		name string
		do   func()
		want bool
	}{
		{"nothing", func() {}, false},
		{"write in place", func() {
			require.NoError(t, os.WriteFile(path, []byte("nameserver 127.0.0.3\n"), 0o644))
		}, true},
		{"nothing again", func() {}, false},
		{"same size rewrite, mtime set back", func() {
			st, err := os.Stat(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, []byte("nameserver 127.0.0.4\n"), 0o644))
			require.NoError(t, os.Chtimes(path, st.ModTime(), st.ModTime()))
		}, true},
		{"replace by rename", func() {
			tmp := filepath.Join(dir, "resolv.conf.tmp")
			require.NoError(t, os.WriteFile(tmp, []byte("nameserver 127.0.0.5\n"), 0o644))
			require.NoError(t, os.Rename(tmp, path))
		}, true},
		{"remove", func() { require.NoError(t, os.Remove(path)) }, true},
		{"still missing", func() {}, false},
		{"create", func() {
			require.NoError(t, os.WriteFile(path, []byte("nameserver 127.0.0.6\n"), 0o644))
		}, true},
	} {
		step.do()
		changed, err := w.Changed()
		require.NoError(t, err, step.name)
		require.Equal(t, step.want, changed, step.name)
	}
}

func TestFileWatcherRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "upstreams.conf")
	require.NoError(t, os.WriteFile(path, []byte("nameserver 127.0.0.2\n"), 0o644))
	w := service.NewFileWatcher(path)
	changes := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, 10*time.Millisecond, func() { changes <- struct{}{} }, nil)
	}()
	require.NoError(t, os.WriteFile(path, []byte("nameserver 127.0.0.3\n"), 0o644))
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("change not noticed")
	}
	cancel()
	<-done
}
