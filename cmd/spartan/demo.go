package main

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/spartan-dns/spartan/internal/config"
)

// Demo settings: a proxy any machine can run without a cluster.
const (
	demoListen        = "127.0.0.1:5353"
	demoUpstreamsFile = "/etc/resolv.conf"
	// demoMasterListen serves the sample cluster zone authoritatively.
	demoMasterListen = "127.0.0.1:61053"
	// demoMesosMaster is the leader named in mesos.DemoState, so that
	// master.mesos and masterN.mesos agree with leader.mesos. It is never
	// contacted: the demo reads the embedded state instead.
	demoMesosMaster = "1.2.3.4:5050"
)

// applyDemo turns the defaults into the -demo configuration: the proxy on
// 127.0.0.1:5353 taking "." from the host's resolv.conf (loopback
// resolvers are kept, since the demo itself listens on loopback), and
// master mode on 127.0.0.1:61053 serving "mesos." from the embedded sample
// state (run passes mesos.DemoState). The proxy reaches that zone through
// master mode's rule that a master's proxy includes its own authoritative
// server. No metrics endpoint, no HTTP API.
func applyDemo(cfg *config.Config) {
	cfg.Listen = []string{demoListen}
	cfg.Upstreams = nil
	cfg.UpstreamsFile = demoUpstreamsFile
	cfg.Metrics = ""
	// The demo's node is this host, as its loopback proxy sees it.
	cfg.NodeAddress = "127.0.0.1"
	m := config.DefaultMaster()
	m.Listen = []string{demoMasterListen}
	m.Masters = []string{demoMesosMaster}
	m.HTTP = ""
	cfg.Master = &m
}

// startPPID is the parent's process ID as the process started.
var startPPID = os.Getppid()

// stopWithParent asks the kernel to send this process SIGTERM when its
// parent exits (Linux's PR_SET_PDEATHSIG), which takes the usual graceful
// shutdown. "go run ./cmd/spartan -demo" runs the demo as a child of the
// go command: killing go run (kill PID, an editor's stop button, a closed
// terminal that signals only the go command) must not leave the demo
// holding its ports. Go's runtime does not end the thread that started a
// child, so the signal comes when the parent process exits, not earlier.
func stopWithParent() error {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0); err != nil {
		return fmt.Errorf("demo: prctl(PR_SET_PDEATHSIG): %w", err)
	}
	// A parent gone before the call sends no signal: the process was
	// already handed to another one.
	if os.Getppid() != startPPID {
		return errors.New("demo: the parent process exited before the demo started")
	}
	return nil
}
