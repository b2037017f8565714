package mesos

import (
	"net"
	"strconv"
	"strings"
)

// pidAddr returns the host:port of a libprocess PID ("master@1.2.3.4:5050"),
// or "" when it is not one.
func pidAddr(pid string) string {
	_, addr, ok := strings.Cut(pid, "@")
	if !ok {
		return ""
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return ""
	}
	return addr
}

// leaderInfoAddr returns the leader's host:port from the fields of a
// "leader_info": its PID, or else its address and port.
func leaderInfoAddr(pid, ip string, addrPort, port int) string {
	if a := pidAddr(pid); a != "" {
		return a
	}
	if ip != "" {
		if addrPort == 0 {
			addrPort = port
		}
		if addrPort > 0 {
			return net.JoinHostPort(ip, strconv.Itoa(addrPort))
		}
	}
	return ""
}
