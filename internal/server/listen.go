package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
)

// setReceiveBuffer raises c's receive buffer to size bytes: with
// SO_RCVBUFFORCE when the process has CAP_NET_ADMIN, so that
// net.core.rmem_max does not cap it, else with SO_RCVBUF, which the
// kernel silently caps. A buffer already as large (a socket unit's
// ReceiveBuffer=, which systemd forces) is left alone.
func setReceiveBuffer(c *net.UDPConn, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		// The kernel reports twice the size set (bookkeeping overhead).
		if cur, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF); err == nil && cur/2 >= size {
			return
		}
		if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size) == nil {
			return
		}
		if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size); err != nil {
			serr = os.NewSyscallError("setsockopt SO_RCVBUF", err)
		}
	}); err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	return serr
}

// linux IPV6_FREEBIND (not in package syscall).
const ipv6Freebind = 78

// listenConfig binds with SO_REUSEADDR (restart while old connections
// linger in TIME_WAIT) and IP_FREEBIND (bind an address that is not
// configured yet, so the service can start before its interface).
var listenConfig = net.ListenConfig{Control: func(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); serr != nil {
			serr = os.NewSyscallError("setsockopt SO_REUSEADDR", serr)
			return
		}
		if network == "udp6" || network == "tcp6" {
			if syscall.SetsockoptInt(int(fd), syscall.SOL_IPV6, ipv6Freebind, 1) == nil {
				return
			}
		}
		if err := syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1); err != nil {
			serr = os.NewSyscallError("setsockopt IP_FREEBIND", err)
		}
	})
	if err != nil {
		return err
	}
	return serr
}}

// Listen binds addr ("IP:port") for UDP and TCP with IP_FREEBIND.
func Listen(ctx context.Context, addr string) (*net.UDPConn, net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("server: listen address %q: %w", addr, err)
	}
	udpNet, tcpNet := "udp4", "tcp4"
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		udpNet, tcpNet = "udp6", "tcp6"
	}
	for attempt := 0; ; attempt++ {
		pc, err := listenConfig.ListenPacket(ctx, udpNet, addr)
		if err != nil {
			return nil, nil, fmt.Errorf("server: listen udp %s: %w", addr, err)
		}
		// With port 0, TCP takes the port the kernel gave UDP; that port
		// may be taken for TCP, so a few ports are tried.
		ln, err := listenConfig.Listen(ctx, tcpNet, pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			if ap.Port() == 0 && errors.Is(err, syscall.EADDRINUSE) && attempt < 20 {
				continue
			}
			return nil, nil, fmt.Errorf("server: listen tcp %s: %w", addr, err)
		}
		return pc.(*net.UDPConn), ln, nil
	}
}

// ListenAll binds every address; on error nothing stays bound.
func ListenAll(ctx context.Context, addrs []string) ([]net.PacketConn, []net.Listener, error) {
	var pcs []net.PacketConn
	var lns []net.Listener
	for _, a := range addrs {
		pc, ln, err := Listen(ctx, a)
		if err != nil {
			for _, p := range pcs {
				p.Close()
			}
			for _, l := range lns {
				l.Close()
			}
			return nil, nil, err
		}
		pcs = append(pcs, pc)
		lns = append(lns, ln)
	}
	return pcs, lns, nil
}
