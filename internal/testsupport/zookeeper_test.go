package testsupport

import (
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestZooKeeperRestart: the server serves, keeps its data across a restart
// on the same port, and ephemeral sequential nodes get Mesos's names.
func TestZooKeeperRestart(t *testing.T) {
	z := StartZooKeeper(t)
	c := z.Dial(t, "")
	info := MesosMasterInfoJSON(t, "id-1", netip.MustParseAddrPort("10.0.0.1:5050"))
	name := c.RegisterMaster(t, "/mesos", "json.info", info)
	require.Equal(t, "json.info_0000000000", name)
	data, _, err := c.Get("/mesos/" + name)
	require.NoError(t, err)
	require.JSONEq(t, string(info), string(data))

	z.Stop()
	require.False(t, ruok(z.Addr()))
	z.Start()
	c2 := z.Dial(t, "")
	ok, _, err := c2.Exists("/mesos")
	require.NoError(t, err)
	require.True(t, ok, "the persistent path survives a restart")
}

// TestMesosMasterInfoJSONIP: the deprecated numeric ip holds 10.0.0.1 as
// Mesos writes it on x86 (s_addr read as a little-endian integer), 16777226.
func TestMesosMasterInfoJSONIP(t *testing.T) {
	var info struct {
		IP uint32 `json:"ip"`
	}
	require.NoError(t, json.Unmarshal(MesosMasterInfoJSON(t, "x", netip.MustParseAddrPort("10.0.0.1:5050")), &info))
	require.Equal(t, uint32(16777226), info.IP)
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], info.IP)
	require.Equal(t, [4]byte{10, 0, 0, 1}, b)
}
