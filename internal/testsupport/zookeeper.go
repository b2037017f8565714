package testsupport

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
)

// The ZooKeeper server the Debian package "zookeeper" installs: its jar
// names its dependencies in its manifest, so the jar alone is the class
// path.
const (
	zooKeeperJar  = "/usr/share/java/zookeeper.jar"
	zooKeeperMain = "org.apache.zookeeper.server.ZooKeeperServerMain"
)

// zooKeeperStartBound is how long a starting server may take to answer
// before the test gives up on it (a JVM on a loaded machine, not a
// measurement).
const zooKeeperStartBound = 2 * time.Minute

// ZooKeeper is a real ZooKeeper server, run standalone from the Debian
// package's jar on a loopback port, with a temporary data directory and
// configuration: a small tick, the admin server off. It can be stopped and
// started again on the same port and data directory, as a server restarts.
type ZooKeeper struct {
	t       testing.TB
	dir     string
	addr    string
	cmdLine []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *lockedBuffer
}

// StartZooKeeper starts a ZooKeeper server and waits until it serves. It is
// stopped and its files removed when the test ends. The test is skipped
// (failed in strict mode) when Java or the zookeeper package is missing.
func StartZooKeeper(t testing.TB) *ZooKeeper {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		SkipOrFail(t, "skipping: java not found; install the zookeeper package (apt-get install zookeeper)")
	}
	if _, err := os.Stat(zooKeeperJar); err != nil {
		SkipOrFail(t, "skipping: %s not found; install the zookeeper package (apt-get install zookeeper)", zooKeeperJar)
	}
	dir := t.TempDir()
	port := FreePort(t, "127.0.0.1")
	z := &ZooKeeper{t: t, dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	cfg := strings.Join([]string{
		"tickTime=200",
		"initLimit=10",
		"syncLimit=5",
		"dataDir=" + filepath.Join(dir, "data"),
		"clientPort=" + strconv.Itoa(port),
		"clientPortAddress=127.0.0.1",
		// A client may ask for Mesos's 10 s session (the default bound is
		// 20 ticks).
		"minSessionTimeout=400",
		"maxSessionTimeout=20000",
		"admin.enableServer=false",
		"4lw.commands.whitelist=ruok",
		"autopurge.purgeInterval=0",
		"",
	}, "\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644))
	z.cmdLine = []string{java,
		// Start-up cost matters more than throughput here.
		"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx128m",
		// No /tmp/hsperfdata_* file, which a killed JVM leaves behind.
		"-XX:-UsePerfData",
		"-Dzookeeper.admin.enableServer=false",
		"-Dzookeeper.jmx.log4j.disable=true",
		"-cp", zooKeeperJar, zooKeeperMain, filepath.Join(dir, "zoo.cfg")}
	t.Cleanup(z.Stop)
	z.Start()
	return z
}

// Addr returns the server's client address, host:port.
func (z *ZooKeeper) Addr() string { return z.addr }

// Start starts the server (again) on its port and data directory and
// waits until it answers "ruok". It fails the test when the server exits
// or does not answer.
func (z *ZooKeeper) Start() {
	z.t.Helper()
	z.mu.Lock()
	if z.cmd != nil {
		z.mu.Unlock()
		z.t.Fatalf("ZooKeeper on %s is already running", z.addr)
	}
	out := &lockedBuffer{}
	cmd := exec.Command(z.cmdLine[0], z.cmdLine[1:]...)
	cmd.Dir = z.dir
	cmd.Stdout, cmd.Stderr = out, out
	// Dies with the test process, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		z.mu.Unlock()
		z.t.Fatalf("starting ZooKeeper: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	z.cmd, z.done, z.out = cmd, done, out
	z.mu.Unlock()

	deadline := time.Now().Add(zooKeeperStartBound)
	for {
		if ruok(z.addr) {
			return
		}
		select {
		case <-done:
			z.mu.Lock()
			z.cmd = nil
			z.mu.Unlock()
			z.t.Fatalf("ZooKeeper on %s exited while starting:\n%s", z.addr, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			z.t.Fatalf("ZooKeeper on %s did not answer within %s:\n%s", z.addr, zooKeeperStartBound, out.String())
		}
	}
}

// Stop kills the server, as a crash or a power cut would, and waits for it
// to exit. The data directory stays for Start. Stopping a stopped server
// does nothing.
func (z *ZooKeeper) Stop() {
	z.mu.Lock()
	cmd, done := z.cmd, z.done
	z.cmd = nil
	z.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// WipeData removes the stopped server's data directory, so that the next
// Start serves an empty tree and knows no session: every client's session
// has expired when it reconnects.
func (z *ZooKeeper) WipeData() {
	z.t.Helper()
	z.mu.Lock()
	running := z.cmd != nil
	z.mu.Unlock()
	if running {
		z.t.Fatalf("ZooKeeper on %s: WipeData while running", z.addr)
	}
	require.NoError(z.t, os.RemoveAll(filepath.Join(z.dir, "data")))
}

// ruok asks the server at addr ZooKeeper's "ruok" four-letter word and
// reports whether it answered "imok".
func ruok(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ruok")); err != nil {
		return false
	}
	b, _ := io.ReadAll(c)
	return string(b) == "imok"
}

// ZKClient is a ZooKeeper session of the test's own, used to write what a
// Mesos master writes.
type ZKClient struct {
	*zk.Conn
}

// Dial opens a session to the server, with digest credentials when
// userPass ("user:password") is given, and waits until it is established.
// It is closed when the test ends.
func (z *ZooKeeper) Dial(t testing.TB, userPass string) *ZKClient {
	t.Helper()
	conn, events, err := zk.Connect([]string{z.addr}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(zkNopLogger{}))
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	timeout := time.After(zooKeeperStartBound)
	for conn.State() != zk.StateHasSession {
		select {
		case <-events:
		case <-timeout:
			t.Fatalf("no ZooKeeper session with %s (state %s)", z.addr, conn.State())
		}
	}
	if userPass != "" {
		require.NoError(t, conn.AddAuth("digest", []byte(userPass)))
	}
	return &ZKClient{conn}
}

// MesosMasterPath creates path and its parents as persistent nodes, the
// way Mesos's zookeeper::Group does before it joins, with acl (nil: open to
// all).
func (c *ZKClient) MesosMasterPath(t testing.TB, path string, acl []zk.ACL) {
	t.Helper()
	if acl == nil {
		acl = zk.WorldACL(zk.PermAll)
	}
	cur := ""
	for _, part := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		cur += "/" + part
		_, err := c.Create(cur, nil, 0, acl)
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			require.NoError(t, err, "creating %s", cur)
		}
	}
}

// RegisterMaster writes data as a Mesos master contending for leadership
// does: an ephemeral sequential child of path labelled label ("json.info"
// for MasterInfo JSON since Mesos 0.23, "info" for the older protobuf),
// named label_NNNNNNNNNN by ZooKeeper (Mesos's zookeeper::Group::join). It
// returns the node's name, and creates path first when missing.
func (c *ZKClient) RegisterMaster(t testing.TB, path, label string, data []byte) string {
	t.Helper()
	c.MesosMasterPath(t, path, nil)
	created, err := c.Create(path+"/"+label+"_", data, zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	return created[strings.LastIndexByte(created, '/')+1:]
}

// Unregister deletes the node name under path, as a master's session
// ending does.
func (c *ZKClient) Unregister(t testing.TB, path, name string) {
	t.Helper()
	require.NoError(t, c.Delete(path+"/"+name, -1))
}

// MesosMasterInfoJSON returns the MasterInfo of a master at ip:port as Mesos
// (1.x) writes it to ZooKeeper: JSON::protobuf of the message, with the
// deprecated "ip" a uint32 holding the address's bytes in network order as
// they lie in memory (Mesos sets it from in_addr.s_addr), so read as a
// number on a little-endian host its first byte is the lowest.
func MesosMasterInfoJSON(t testing.TB, id string, addr netip.AddrPort) []byte {
	t.Helper()
	ip := addr.Addr().String()
	info := map[string]any{
		"address":  map[string]any{"hostname": ip, "ip": ip, "port": addr.Port()},
		"hostname": ip,
		"id":       id,
		"pid":      fmt.Sprintf("master@%s", addr),
		"port":     addr.Port(),
		"version":  "1.11.0",
	}
	if addr.Addr().Is4() {
		b := addr.Addr().As4()
		info["ip"] = binary.LittleEndian.Uint32(b[:])
	}
	data, err := json.Marshal(info)
	require.NoError(t, err)
	return data
}

// lockedBuffer collects a child process's output for a failure message.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// zkNopLogger silences go-zookeeper's connection log in tests.
type zkNopLogger struct{}

func (zkNopLogger) Printf(string, ...any) {}
