package mesosleader

import (
	"net/netip"
	"testing"

	"github.com/spartan-dns/spartan/internal/config"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/stretchr/testify/require"
)

// TestMasterAddr reads MasterInfo as Mesos writes it into json.info_ nodes
// (the master's contender stores stringify(JSON::protobuf(masterInfo)),
// src/master/contender/zookeeper.cpp). Mesos-DNS's detect.masterAddr takes
// address.ip and address.port when address is set (Mesos >= 0.24), else the
// numeric ip in the host's byte order (little-endian on x86, where Mesos
// runs) with port; mesos.proto documents ip as "packed 4-bytes integer,
// stored in network order" and Mesos fills it from in_addr.s_addr. A host
// name is taken before the numeric ip here when address.ip is missing.
func TestMasterAddr(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"Mesos 1.x", string(testsupport.MesosMasterInfoJSON(t, "id", netip.MustParseAddrPort("10.0.3.11:5050"))), "10.0.3.11:5050"},
		{"address.port wins", `{"address":{"ip":"10.0.0.2","port":15050},"port":5050,"ip":33554442}`, "10.0.0.2:15050"},
		{"IPv6 address", `{"address":{"ip":"2001:db8::1","port":5050}}`, "[2001:db8::1]:5050"},
		{"address.hostname", `{"address":{"hostname":"master1.example.com","port":5051}}`, "master1.example.com:5051"},
		{"hostname before numeric ip", `{"hostname":"m1","ip":16777226,"port":5050}`, "m1:5050"},
		{"hostname that is an address", `{"hostname":"10.0.0.9","port":5050}`, "10.0.0.9:5050"},
		// Mesos < 0.24: 10.0.0.1 is s_addr 0x0100000a on little-endian.
		{"numeric ip", `{"id":"x","ip":16777226,"port":5050,"pid":"master@10.0.0.1:5050"}`, "10.0.0.1:5050"},
		{"numeric ip 192.0.2.17", `{"ip":285343936,"port":5050}`, "192.0.2.17:5050"},
		// mesos.proto: required uint32 port = 3 [default = 5050].
		{"port default", `{"ip":16777226}`, "10.0.0.1:5050"},
		{"field names in any case", `{"Address":{"IP":"10.0.0.3","Port":5050}}`, "10.0.0.3:5050"},
		{"unknown fields", `{"address":{"ip":"10.0.0.4","port":5050},"domain":{"fault_domain":{}},"capabilities":[{"type":"AGENT_UPDATE"}]}`, "10.0.0.4:5050"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MasterAddr([]byte(tc.json))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestMasterAddrErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"protobuf bytes", "\x08\x01\x12\x05hello", "MasterInfo JSON"},
		{"empty", "", "MasterInfo JSON"},
		{"ip of the wrong type", `{"ip":"10.0.0.1","port":5050}`, "MasterInfo JSON"},
		{"negative ip", `{"ip":-1}`, "MasterInfo JSON"},
		{"port 0", `{"address":{"ip":"10.0.0.1","port":0}}`, "port 0 out of range"},
		{"port too big", `{"address":{"ip":"10.0.0.1","port":70000}}`, "port 70000 out of range"},
		{"bad address.ip", `{"address":{"ip":"10.0.0","port":5050}}`, `address.ip "10.0.0" is not an IP address`},
		{"zone", `{"address":{"ip":"fe80::1%eth0","port":5050}}`, "is not an IP address"},
		{"bad hostname", `{"hostname":"bad_host","port":5050}`, `hostname "bad_host" is not a host name`},
		{"no address", `{"id":"x","port":5050}`, "no address"},
		{"zero ip", `{"ip":0,"port":5050}`, "no address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MasterAddr([]byte(tc.json))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestJSONNodes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		children []string
		want     []string
	}{
		// mesos-go's selectTopNodePrefix: the leader has the lowest
		// sequence number of the json.info_ nodes; Mesos 0.23 wrote both
		// kinds. The others follow by sequence number.
		{"lowest sequence first", []string{"json.info_0000000012", "json.info_0000000003", "json.info_0000000007"},
			[]string{"json.info_0000000003", "json.info_0000000007", "json.info_0000000012"}},
		{"protobuf info_ ignored", []string{"info_0000000001", "json.info_0000000002"}, []string{"json.info_0000000002"}},
		{"only protobuf", []string{"info_0000000001", "log_replicas"}, []string{}},
		{"not a number", []string{"json.info_x", "json.info_0000000009"}, []string{"json.info_0000000009"}},
		{"numeric, not textual, order", []string{"json.info_10000000000", "json.info_9999999999"},
			[]string{"json.info_9999999999", "json.info_10000000000"}},
		{"none", nil, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, jsonNodes(tc.children))
		})
	}
}

// FuzzMasterAddr: no input panics the decoder, and an accepted one names a
// host:port whose port is in range.
func FuzzMasterAddr(f *testing.F) {
	f.Add(testsupport.MesosMasterInfoJSON(f, "id", netip.MustParseAddrPort("10.0.3.11:5050")))
	for _, s := range []string{
		`{"ip":16777226,"port":5050}`,
		`{"address":{"hostname":"m1.example.com","port":5051}}`,
		`{"address":{"ip":"2001:db8::1","port":5050}}`,
		`{"hostname":"bad_host"}`,
		"\x08\x01",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		addr, err := MasterAddr(data)
		if err != nil {
			return
		}
		host, port, ok := cutHostPort(addr)
		if !ok || host == "" || port == 0 {
			t.Fatalf("%q gave %q", data, addr)
		}
	})
}

func cutHostPort(s string) (string, int, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().String(), int(ap.Port()), true
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			p := 0
			for _, c := range s[i+1:] {
				if c < '0' || c > '9' {
					return "", 0, false
				}
				p = p*10 + int(c-'0')
			}
			return s[:i], p, p > 0 && p < 65536 && config.IsHostName(s[:i])
		}
	}
	return "", 0, false
}
