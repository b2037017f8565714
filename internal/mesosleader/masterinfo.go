package mesosleader

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/spartan-dns/spartan/internal/config"
)

// mesosPort is MasterInfo.port's default in Mesos's mesos.proto.
const mesosPort = 5050

// masterInfo is the part of Mesos's MasterInfo message (include/mesos/
// mesos.proto) that locates a master, as Mesos writes it in JSON
// (JSON::protobuf): the deprecated ip/port/hostname and, since Mesos 0.24,
// address.
type masterInfo struct {
	ID       string   `json:"id"`
	IP       *uint32  `json:"ip"`
	Port     *uint32  `json:"port"`
	Hostname string   `json:"hostname"`
	Address  *address `json:"address"`
}

type address struct {
	Hostname string `json:"hostname"`
	IP       string `json:"ip"`
	Port     *int32 `json:"port"`
}

// MasterAddr decodes a MasterInfo JSON document, the data of a json.info_
// node, and returns the master's HTTP endpoint as host:port. The address
// is address.ip, else a host name (address.hostname, then hostname), else
// the deprecated numeric ip; the port is address.port, else port, else
// 5050. The numeric ip holds the address's four bytes in network order as
// they lie in memory (Mesos copies in_addr.s_addr into it), so the integer
// is read little-endian, as Mesos-DNS reads it on the x86 hosts Mesos runs
// on.
func MasterAddr(data []byte) (string, error) {
	var mi masterInfo
	// encoding/json, as mesos-go's detector decodes it: names match in
	// any case and unknown fields are ignored.
	if err := json.Unmarshal(data, &mi); err != nil {
		return "", fmt.Errorf("MasterInfo JSON: %w", err)
	}
	port := mesosPort
	if mi.Port != nil {
		port = int(*mi.Port)
	}
	if a := mi.Address; a != nil && a.Port != nil {
		port = int(*a.Port)
	}
	if port <= 0 || port > 65535 {
		return "", fmt.Errorf("MasterInfo: port %d out of range", port)
	}
	p := strconv.Itoa(port)
	if a := mi.Address; a != nil && a.IP != "" {
		ip, err := netip.ParseAddr(a.IP)
		if err != nil || ip.Zone() != "" {
			return "", fmt.Errorf("MasterInfo: address.ip %q is not an IP address", a.IP)
		}
		return net.JoinHostPort(ip.Unmap().String(), p), nil
	}
	host := mi.Hostname
	if a := mi.Address; a != nil && a.Hostname != "" {
		host = a.Hostname
	}
	if host != "" {
		if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" {
			return net.JoinHostPort(ip.Unmap().String(), p), nil
		}
		if !config.IsHostName(host) {
			return "", fmt.Errorf("MasterInfo: hostname %q is not a host name", host)
		}
		return net.JoinHostPort(host, p), nil
	}
	if mi.IP != nil && *mi.IP != 0 {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], *mi.IP)
		return net.JoinHostPort(netip.AddrFrom4(b).String(), p), nil
	}
	return "", errors.New("MasterInfo has no address: no address.ip, hostname or ip")
}
