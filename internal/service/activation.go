package service

import (
	"errors"
	"fmt"
	"net"

	"github.com/coreos/go-systemd/v22/activation"
)

// Sockets are the listening sockets passed by the service manager.
type Sockets struct {
	Packet []net.PacketConn // UDP
	Stream []net.Listener   // TCP
}

// Empty reports whether no socket was passed.
func (s Sockets) Empty() bool { return len(s.Packet) == 0 && len(s.Stream) == 0 }

// Activated returns the sockets passed with the systemd socket activation
// protocol (LISTEN_PID, LISTEN_FDS), empty when the process was not
// socket-activated. The LISTEN_* variables are unset so children do not
// inherit them. A passed descriptor that is neither a datagram nor a
// stream socket is an error: serving on half the configured sockets is
// worse than failing loudly.
func Activated() (Sockets, error) {
	var s Sockets
	var errs []error
	for _, f := range activation.Files(true) {
		// net.File* duplicate the descriptor; the original is closed.
		if ln, err := net.FileListener(f); err == nil {
			s.Stream = append(s.Stream, ln)
		} else if pc, err := net.FilePacketConn(f); err == nil {
			s.Packet = append(s.Packet, pc)
		} else {
			errs = append(errs, fmt.Errorf("service: passed descriptor %s is neither a stream nor a datagram socket: %w", f.Name(), err))
		}
		f.Close()
	}
	if err := errors.Join(errs...); err != nil {
		s.Close()
		return Sockets{}, err
	}
	return s, nil
}

// Close closes every socket.
func (s Sockets) Close() {
	for _, pc := range s.Packet {
		pc.Close()
	}
	for _, ln := range s.Stream {
		ln.Close()
	}
}
