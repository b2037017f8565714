package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
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

// bindOptions sets, on a socket about to be bound: SO_REUSEADDR (restart
// while old connections linger in TIME_WAIT), IP_FREEBIND (bind an address
// that is not configured yet, so the service can start before its
// interface) and, when reusePort is set, SO_REUSEPORT (several sockets on
// one address, the kernel spreading clients over them).
func bindOptions(reusePort bool) func(network, address string, rc syscall.RawConn) error {
	return func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); serr != nil {
				serr = os.NewSyscallError("setsockopt SO_REUSEADDR", serr)
				return
			}
			if reusePort {
				if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
					serr = os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
					return
				}
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
	}
}

var (
	listenConfig      = net.ListenConfig{Control: bindOptions(false)}
	listenConfigReuse = net.ListenConfig{Control: bindOptions(true)}
)

// Listen binds addr ("IP:port") for UDP and TCP with IP_FREEBIND.
func Listen(ctx context.Context, addr string) (*net.UDPConn, net.Listener, error) {
	return listen(ctx, addr, listenConfig)
}

func listen(ctx context.Context, addr string, udpConfig net.ListenConfig) (*net.UDPConn, net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("server: listen address %q: %w", addr, err)
	}
	udpNet, tcpNet := "udp4", "tcp4"
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		udpNet, tcpNet = "udp6", "tcp6"
	}
	for attempt := 0; ; attempt++ {
		pc, err := udpConfig.ListenPacket(ctx, udpNet, addr)
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

// ListenAll binds every address for TCP and for UDP, with udpSockets UDP
// sockets per address (SO_REUSEPORT when more than one: see Siblings); on
// error nothing stays bound.
func ListenAll(ctx context.Context, addrs []string, udpSockets int) ([]net.PacketConn, []net.Listener, error) {
	var pcs []net.PacketConn
	var lns []net.Listener
	closeAll := func() {
		for _, p := range pcs {
			p.Close()
		}
		for _, l := range lns {
			l.Close()
		}
	}
	udpConfig := listenConfig
	if udpSockets > 1 {
		udpConfig = listenConfigReuse
	}
	for _, a := range addrs {
		pc, ln, err := listen(ctx, a, udpConfig)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		pcs = append(pcs, pc)
		lns = append(lns, ln)
		more, err := Siblings(ctx, pc, udpSockets)
		pcs = append(pcs, more...)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	return pcs, lns, nil
}

// Siblings binds n-1 more UDP sockets to pc's address with SO_REUSEPORT
// when pc has SO_REUSEPORT set (always the case for ListenAll's sockets
// when n > 1; for a socket passed by systemd, when its unit sets
// ReusePort=yes), so that n goroutines read the address, each its own
// socket. A socket without SO_REUSEPORT gets none: binding beside it would
// fail. On error, the sockets bound so far are returned with it.
func Siblings(ctx context.Context, pc net.PacketConn, n int) ([]net.PacketConn, error) {
	if n <= 1 {
		return nil, nil
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return nil, nil
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("server: %s: %w", pc.LocalAddr(), err)
	}
	reuse := 0
	var serr error
	if err := rc.Control(func(fd uintptr) {
		reuse, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT)
	}); err != nil || serr != nil {
		return nil, fmt.Errorf("server: %s: reading SO_REUSEPORT: %w", pc.LocalAddr(), errors.Join(err, serr))
	}
	if reuse == 0 {
		return nil, nil
	}
	local := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	network := "udp4"
	if local.Addr().Is6() && !local.Addr().Is4In6() {
		network = "udp6"
	}
	var out []net.PacketConn
	for range n - 1 {
		s, err := listenConfigReuse.ListenPacket(ctx, network, local.String())
		if err != nil {
			return out, fmt.Errorf("server: listen udp %s beside its SO_REUSEPORT socket: %w", local, err)
		}
		out = append(out, s)
	}
	return out, nil
}
