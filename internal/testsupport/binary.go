package testsupport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// builds caches one build per package per test process.
var builds sync.Map // package path -> *build

// binDir is the directory BuildBinary builds into, made on first use and
// removed by Main when the tests are over.
var binDir struct {
	sync.Mutex
	main bool // Main is running the tests
	path string
}

type build struct {
	once sync.Once
	path string
	err  error
}

// Main runs the tests of a package whose tests build binaries, then
// removes the binaries, and returns the exit code for os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(testsupport.Main(m)) }
//
// BuildBinary refuses to build without it, so no test run leaves binaries
// behind in the temporary directory.
func Main(m *testing.M) int {
	binDir.Lock()
	binDir.main = true
	binDir.Unlock()
	code := m.Run()
	binDir.Lock()
	defer binDir.Unlock()
	if binDir.path != "" {
		if err := os.RemoveAll(binDir.path); err != nil {
			fmt.Fprintln(os.Stderr, "testsupport: removing built binaries:", err)
		}
		binDir.path = ""
	}
	return code
}

// BuildBinary builds the main package pkg (an import path such as
// "github.com/spartan-dns/spartan/cmd/spartan") once per test process and
// returns the binary's path. The binaries live in a temporary directory
// that Main removes once the tests are over; Go's build cache makes the
// build cheap after the first time.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	dir, err := buildDir()
	require.NoError(t, err)
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		b.path = filepath.Join(dir, path.Base(pkg))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, goTool(), "build", "-o", b.path, pkg).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	})
	require.NoError(t, b.err)
	return b.path
}

// buildDir returns BuildBinary's directory, making it on first use.
func buildDir() (string, error) {
	binDir.Lock()
	defer binDir.Unlock()
	if !binDir.main {
		return "", errors.New("testsupport: BuildBinary needs the package's TestMain to call testsupport.Main, which removes the binaries")
	}
	if binDir.path == "" {
		dir, err := os.MkdirTemp("", "spartan-test-bin-")
		if err != nil {
			return "", err
		}
		binDir.path = dir
	}
	return binDir.path, nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// FreePort returns a port that is free for both UDP and TCP on ip at the
// time of the call. Another process may take it before the caller binds it;
// on loopback in tests that is rare enough. A test that can take the bound
// sockets themselves uses ListenBoth.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	pc, ln := ListenBoth(t, nil, ip)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	ln.Close()
	return port
}

// ListenBoth binds a UDP and a TCP socket to one port on ip, the UDP one
// through lc (nil: the defaults), and returns them open: no one else can
// take the port in between, as they can after FreePort. The kernel picks
// the UDP port; when the TCP port of that number is another socket's, it
// picks again.
func ListenBoth(t testing.TB, lc *net.ListenConfig, ip string) (net.PacketConn, net.Listener) {
	t.Helper()
	if lc == nil {
		lc = &net.ListenConfig{}
	}
	addr, err := netip.ParseAddr(ip)
	require.NoError(t, err, "ListenBoth: bad IP")
	pick := netip.AddrPortFrom(addr, 0).String()
	for attempt := 0; attempt < 100; attempt++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", pick)
		require.NoError(t, err, "ListenBoth: binding UDP on %s", ip)
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatalf("ListenBoth: no port free for both UDP and TCP on %s", ip)
	return nil, nil
}

// Dig runs dig against server ("host:port" or a bare host for port 53)
// with args, bounded by +time=2 +tries=1 (args given later win, as in dig)
// and a 30 s process deadline. It returns dig's standard output; err
// includes its standard error. The test is skipped (failed in strict mode) when dig is missing.
func Dig(t testing.TB, server string, args ...string) (stdout string, err error) {
	t.Helper()
	dig, lerr := exec.LookPath("dig")
	if lerr != nil {
		SkipOrFail(t, "dig not installed (apt-get install dnsutils); skipping a test that needs it")
	}
	host, port := server, "53"
	if h, p, serr := net.SplitHostPort(server); serr == nil {
		host, port = h, p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"@" + host, "-p", port, "+time=2", "+tries=1"}, args...)
	cmd := exec.CommandContext(ctx, dig, full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("dig %s: %w: %s", strings.Join(full, " "), err, errb.String())
	}
	return out.String(), nil
}

// Process is a child process started by StartProcess. Its output
// (standard output and error, interleaved) is captured and written to the
// test log if the test fails; it is killed when the test ends.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  syncBuffer
	err  syncBuffer
}

// StartProcess starts bin with args.
func StartProcess(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	return StartCmd(t, exec.Command(bin, args...))
}

// StartCmd starts a prepared command (for its environment, or a command
// wrapping the binary such as "ip netns exec"); its output is captured as
// with StartProcess.
func StartCmd(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	bin, args := cmd.Path, cmd.Args[1:]
	p := &Process{cmd: cmd, done: make(chan struct{})}
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = teeWriter{&p.out, &p.err}
	require.NoError(t, p.cmd.Start(), "starting %s", bin)
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", bin, strings.Join(args, " "), p.Output())
		}
	})
	return p
}

// Pid returns the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill SIGKILLs the process (if still running) and waits for it to exit.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Wait waits for the process to exit and returns its exit code (-1 when
// killed by a signal).
func (p *Process) Wait(ctx context.Context) (int, error) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("waiting for %s: %w", p.cmd.Path, ctx.Err())
	}
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns everything the process wrote so far, both streams.
func (p *Process) Output() string { return p.out.String() }

// Stderr returns what the process wrote to standard error so far.
func (p *Process) Stderr() string { return p.err.String() }

// WaitOutput waits until the output contains s. It fails early when the
// process exits without writing it.
func (p *Process) WaitOutput(ctx context.Context, s string) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Contains(p.Output(), s) {
			return nil
		}
		select {
		case <-p.done:
			if strings.Contains(p.Output(), s) {
				return nil
			}
			return errors.New("process exited before writing " + fmt.Sprintf("%q", s))
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q in the output: %w", s, ctx.Err())
		case <-tick.C:
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a child's writer goroutines and
// readers in the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// teeWriter writes to both buffers.
type teeWriter struct{ a, b *syncBuffer }

func (w teeWriter) Write(p []byte) (int, error) {
	_, _ = w.a.Write(p)
	return w.b.Write(p)
}
