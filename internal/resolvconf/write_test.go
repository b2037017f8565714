package resolvconf

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Sys().(*syscall.Stat_t).Ino
}

func TestWriteFile(t *testing.T) {
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		initial []byte // nil: no file
		perm    fs.FileMode
		data    string
		outcome Outcome
	}{
		{name: "create", data: "nameserver 192.0.2.1\n", outcome: Renamed},
		{name: "replace", initial: []byte("nameserver 192.0.2.9\n"), perm: 0o640, data: "nameserver 192.0.2.1\n", outcome: Renamed},
		{name: "unchanged", initial: []byte("nameserver 192.0.2.1\n"), perm: 0o644, data: "nameserver 192.0.2.1\n", outcome: Unchanged},
		{name: "empty to content", initial: []byte{}, perm: 0o644, data: "nameserver 192.0.2.1\n", outcome: Renamed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolv.conf")
			var ino uint64
			if tc.initial != nil {
				require.NoError(t, os.WriteFile(path, tc.initial, tc.perm))
				require.NoError(t, os.Chmod(path, tc.perm))
				require.NoError(t, os.Chtimes(path, old, old))
				ino = inode(t, path)
			}
			got, err := WriteFile(path, []byte(tc.data), WriteOptions{})
			require.NoError(t, err)
			require.Equal(t, tc.outcome, got)
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tc.data, string(data))
			st, err := os.Stat(path)
			require.NoError(t, err)
			wantPerm := tc.perm
			if tc.initial == nil {
				wantPerm = 0o644
			}
			require.Equal(t, wantPerm, st.Mode().Perm(), "mode kept (or 0644 for a new file)")
			if tc.outcome == Unchanged {
				require.True(t, st.ModTime().Equal(old), "no write means no mtime change: %v", st.ModTime())
				require.Equal(t, ino, inode(t, path))
			} else if tc.initial != nil {
				require.NotEqual(t, ino, inode(t, path), "replaced by rename")
			}
			entries, err := os.ReadDir(filepath.Dir(path))
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary file left behind")
		})
	}
}

func TestWriteFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := WriteFile(dir, []byte("x"), WriteOptions{})
	require.ErrorContains(t, err, "not a regular file")
	_, err = WriteFile(filepath.Join(dir, "missing", "resolv.conf"), []byte("x"), WriteOptions{})
	require.ErrorContains(t, err, filepath.Join(dir, "missing"))
	_, err = WriteFile(filepath.Join(dir, "f"), []byte("x"), WriteOptions{Symlink: "sideways"})
	require.ErrorContains(t, err, `unknown symlink policy "sideways"`)
}

func TestWriteFileSymlinkPolicy(t *testing.T) {
	const stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n"
	const data = "nameserver 192.0.2.53\n"
	tests := []struct {
		policy     SymlinkPolicy
		wantLink   bool
		wantTarget string
	}{
		{policy: "", wantLink: false, wantTarget: stub},
		{policy: SymlinkReplace, wantLink: false, wantTarget: stub},
		{policy: SymlinkFollow, wantLink: true, wantTarget: data},
	}
	for _, tc := range tests {
		t.Run(string(tc.policy), func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "stub-resolv.conf")
			path := filepath.Join(dir, "resolv.conf")
			require.NoError(t, os.WriteFile(target, []byte(stub), 0o644))
			require.NoError(t, os.Symlink("stub-resolv.conf", path))
			got, err := WriteFile(path, []byte(data), WriteOptions{Symlink: tc.policy})
			require.NoError(t, err)
			require.Equal(t, Renamed, got)
			st, err := os.Lstat(path)
			require.NoError(t, err)
			require.Equal(t, tc.wantLink, st.Mode()&fs.ModeSymlink != 0)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, data, string(b))
			b, err = os.ReadFile(target)
			require.NoError(t, err)
			require.Equal(t, tc.wantTarget, string(b))
			// A second write of the same content is a no-op either way.
			got, err = WriteFile(path, []byte(data), WriteOptions{Symlink: tc.policy})
			require.NoError(t, err)
			require.Equal(t, Unchanged, got)
		})
	}
}

func TestPadTo(t *testing.T) {
	tests := []struct {
		data string
		size int
		want string
	}{
		{"abc\n", 2, "abc\n"},
		{"abc\n", 4, "abc\n"},
		{"abc\n", 5, "abc\n\n"},
		{"abc\n", 8, "abc\n###\n"},
		{"abc", 4, "abc\n"},
		{"abc", 6, "abc\n#\n"},
		{"", 3, "##\n"},
	}
	for _, tc := range tests {
		got := padTo([]byte(tc.data), tc.size)
		require.Equal(t, tc.want, string(got), "%q to %d", tc.data, tc.size)
		require.Equal(t, max(len(tc.data), tc.size), len(got))
	}
}

// versions are two contents of different lengths; a reader must only ever
// see one of them whole.
var versions = [2][]byte{
	[]byte(Marker + " Proxy up.\nnameserver 192.0.2.53\nsearch example.com\noptions timeout:1 attempts:3\n"),
	[]byte(Marker + " Proxy down: upstream resolvers.\nnameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\nsearch example.com\noptions timeout:1 attempts:3\n"),
}

// hammer rewrites path alternately with versions rewrites times while a
// reader reads it at least minReads times, and returns every distinct
// content the reader saw with how often.
func hammer(t *testing.T, path string, rewrites, minReads int, want Outcome) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	writerDone := make(chan struct{})
	seen := map[string]int{}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(writerDone)
		for i := range rewrites {
			got, err := WriteFile(path, versions[(i+1)%2], WriteOptions{})
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("rewrite %d: %v, want %v", i, got, want)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return nil
	})
	g.Go(func() error {
		reads := 0
		for {
			select {
			case <-writerDone:
				if reads >= minReads {
					return nil
				}
			case <-ctx.Done():
				return ctx.Err()
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("read %d: %w", reads, err)
			}
			seen[string(b)]++
			reads++
		}
	})
	require.NoError(t, g.Wait())
	return seen
}

func TestWriteFileConcurrentReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, os.WriteFile(path, versions[0], 0o644))
	seen := hammer(t, path, 300, 10000, Renamed)
	for content, n := range seen {
		require.True(t, content == string(versions[0]) || content == string(versions[1]),
			"reader saw %d times a content that is neither version: %q", n, content)
	}
	require.Len(t, seen, 2, "the reader saw both versions")
	t.Logf("reads: %d of version 0, %d of version 1", seen[string(versions[0])], seen[string(versions[1])])
}

// The EBUSY path needs a file that is a mount point. The test re-executes
// itself inside a private mount namespace (CLONE_NEWNS, with every mount
// made private, as unshare -m does), where the helper bind-mounts a file
// over another and rewrites it; the mount disappears with the namespace.
const helperEnv = "SPARTAN_RESOLVCONF_BINDMOUNT_HELPER"

// hostResolvConf is the bind-mounted file's original content.
const hostResolvConf = "# Generated by NetworkManager\nsearch example.com\nnameserver 192.0.2.1\n"

func TestWriteFileBindMount(t *testing.T) {
	testsupport.SkipUnlessRoot(t, "a bind mount inside a private mount namespace")
	dir := t.TempDir()
	src := filepath.Join(dir, "host-resolv.conf")
	dst := filepath.Join(dir, "resolv.conf")
	require.NoError(t, os.WriteFile(src, []byte(hostResolvConf), 0o644))
	require.NoError(t, os.WriteFile(dst, []byte("placeholder under the mount\n"), 0o644))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBindMountHelper$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+src+string(os.PathListSeparator)+dst)
	// Go makes every mount of the new namespace private (MS_REC|MS_PRIVATE
	// on /) before the exec, so the bind mount never propagates back.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		testsupport.SkipOrFail(t, "skipping: cannot start a process in a new mount namespace here: %v", err)
	}
	err := cmd.Wait()
	out := buf.Bytes()
	require.NoError(t, err, "helper output:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestBindMountHelper")
	t.Logf("helper:\n%s", out)

	// The mount is gone with the namespace; the in-place writes landed in
	// the bind source, the file underneath was never touched.
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.Equal(t, hostResolvConf, string(b), "the restored original is in the source file")
	b, err = os.ReadFile(dst)
	require.NoError(t, err)
	require.Equal(t, "placeholder under the mount\n", string(b))
}

// TestBindMountHelper runs only as TestWriteFileBindMount's child, inside
// its private mount namespace.
func TestBindMountHelper(t *testing.T) {
	paths, ok := os.LookupEnv(helperEnv)
	if !ok {
		t.Skip("helper process for TestWriteFileBindMount")
	}
	src, dst, _ := strings.Cut(paths, string(os.PathListSeparator))
	require.NoError(t, syscall.Mount(src, dst, "", syscall.MS_BIND, ""), "mount --bind %s %s", src, dst)
	srcIno := inode(t, src)
	require.Equal(t, srcIno, inode(t, dst), "dst is now the bind mount of src")

	// Plain rename over a mount point fails with EBUSY: that is the path
	// under test.
	tmp := filepath.Join(filepath.Dir(dst), "probe")
	require.NoError(t, os.WriteFile(tmp, nil, 0o644))
	require.ErrorIs(t, os.Rename(tmp, dst), syscall.EBUSY)
	require.NoError(t, os.Remove(tmp))

	// Take the file over the way the watchdog does, then hammer it.
	m := &Manager{Path: dst}
	orig, saved, err := m.Original()
	require.NoError(t, err)
	require.True(t, saved)
	require.Equal(t, hostResolvConf, string(orig.Bytes()))
	_, err = WriteFile(dst, versions[0], WriteOptions{})
	require.NoError(t, err)

	seen := hammer(t, dst, 300, 10000, InPlace)
	require.Equal(t, srcIno, inode(t, dst), "still the same mounted file")
	// What the in-place path guarantees: never empty, never shorter than
	// both versions; between its steps a version whole, or whole and then
	// a comment, so always a usable nameserver. The kernel does not make
	// one write atomic against a read of a regular file, so a read racing
	// the copy of the content at offset 0 sees, byte by byte, either the
	// file before that copy or after it: the longer version, or the
	// shorter one padded to its length. Those splices are checked byte by
	// byte, counted and logged; one can lack a nameserver line, which is
	// why rename is always tried first. A read racing the truncation can
	// also see zeros past the shorter version's end: the kernel clears
	// the cut-off part of the page after the reader checked the size.
	minLen := min(len(versions[0]), len(versions[1]))
	short, long := versions[0], versions[1]
	if len(short) > len(long) {
		short, long = long, short
	}
	shortPadded := padTo(short, len(long))
	var torn, tornNoNS, padded int
	for content, n := range seen {
		require.GreaterOrEqual(t, len(content), minLen, "reader saw a short file %d times: %q", n, content)
		switch {
		case content == string(versions[0]) || content == string(versions[1]):
		case isPadded(content, versions[0]) || isPadded(content, versions[1]):
			padded += n
		default:
			require.True(t, isSplice(content, shortPadded, long, len(short)),
				"reader saw %d times a content that is no version, padded version or splice of the two: %q", n, content)
			torn += n
			if len(Parse([]byte(content)).Nameservers()) == 0 {
				tornNoNS += n
			}
			t.Logf("a read racing the write saw %d times: %q", n, content)
			continue
		}
		require.NotEmpty(t, Parse([]byte(content)).Nameservers(), "reader saw a file without nameservers %d times: %q", n, content)
	}
	t.Logf("reads: %d, padded (new content, then a comment): %d, racing the copy: %d (%d of them without a nameserver)",
		sum(seen), padded, torn, tornNoNS)
	b, err := os.ReadFile(dst)
	require.NoError(t, err)
	require.Equal(t, string(versions[0]), string(b))

	// Restore works on a mount point too: back to the original bytes.
	_, err = WriteFile(dst, []byte(Marker+" something else\n"), WriteOptions{})
	require.NoError(t, err)
	require.NoError(t, m.Restore())
	b, err = os.ReadFile(dst)
	require.NoError(t, err)
	require.True(t, bytes.Equal([]byte(hostResolvConf), b))
}

// isPadded reports content being v followed by padding comment characters
// (or the prefix of them the write had copied so far).
func isPadded(content string, v []byte) bool {
	rest, ok := strings.CutPrefix(content, string(v))
	return ok && strings.Trim(rest, "#\n") == ""
}

// isSplice reports content having, at every offset, the byte of a or the
// byte of b (a and b of the same length), or a zero from offset cut on:
// what a read racing an in-place overwrite of a with b, or the truncation
// to cut bytes that follows, can see.
func isSplice(content string, a, b []byte, cut int) bool {
	if len(content) != len(a) || len(a) != len(b) {
		return false
	}
	for i := range len(content) {
		if content[i] != a[i] && content[i] != b[i] && (i < cut || content[i] != 0) {
			return false
		}
	}
	return true
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
