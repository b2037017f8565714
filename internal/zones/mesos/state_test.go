package mesos

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// dupNamesState repeats names everywhere: the last one wins, as in
// encoding/json (which a null does not change).
var dupNamesState = `{"leader":"master@10.0.0.1:5050","leader":"master@10.0.0.2:5050","pid":"master@10.0.0.3:5050","pid":null,"a":{"b":1,"b":[]},
	"frameworks":[{"name":"a","name":"b","id":"f","tasks":[{"id":"x","ID":"y","state":"TASK_KILLED","state":"TASK_RUNNING",
	  "statuses":[{"state":"TASK_RUNNING","timestamp":1,"labels":[{"key":"MesosContainerizer.NetworkSettings.IPAddress","value":"10.0.0.5"}]}],
	  "statuses":[{"state":"TASK_RUNNING","timestamp":2,"timestamp":3,"healthy":false,"healthy":true,
	    "labels":[{"key":"MesosContainerizer.NetworkSettings.IPAddress","value":"10.0.0.7","value":"10.0.0.8"}]}]}]}],
	"slaves":[{"id":"s","id":"t","hostname":"h","hostname":null}]}`

// invalidUTF8State has invalid UTF-8 in skipped values and names, and in
// a kept string, where it becomes U+FFFD.
var invalidUTF8State = "{\"skipped\":{\"\xff\":\"\xfe\xc3(\",\"k\\u00e9\":[\"\xed\xa0\x80\",\"\\ud800\"]},\"frameworks\":[{\"name\":\"m\",\"extra\xc0\":\"\xff\",\"tasks\":[" +
	"{\"id\":\"t\",\"name\":\"\xe2\x82\",\"state\":\"TASK_RUNNING\",\"labels\":[{\"key\":\"\xff\",\"value\":\"\xc0\xaf\"}],\"container\":{\"\xfe\":{\"\xfe\":null}}}]}]}"

// decodeCases are states that exercise the decoder's corners: escapes,
// non-ASCII and invalid UTF-8, key case, nulls, wrong JSON types, numbers.
var decodeCases = []string{
	`{"leader":"master@10.0.0.1:5050","frameworks":[{"name":"m\u0061r\"a","tasks":[{"id":"a\\b","name":"n\u00e9","slave_id":"S-1","state":"TASK_RUNNING"}]}],"slaves":[{"id":"S-1","pid":"slave(1)@10.1.0.1:5051"}]}`,
	`{"leader":null,"pid":"master@10.0.0.2:5050","leader_info":{"pid":"","address":{"ip":"10.0.0.9","port":0},"port":5050}}`,
	`{"LEADER":"master@10.0.0.1:5050","leader_info":{"PID":"master@10.0.0.3:5050"}}`,
	"{\"frameworks\":[{\"name\":\"bad\xffutf8\",\"tasks\":[{\"ID\":\"x\",\"Name\":\"caps\",\"SLAVE_ID\":\"s\",\"State\":\"TASK_RUNNING\"}]}]}",
	`{"frameworks":[{"name":"m","tasks":[null,1,"x",[],{"state":"TASK_RUNNING","statuses":{}},{"state":"TASK_RUNNING","id":5},{"state":"TASK_KILLED","id":5}]}]}`,
	`{"frameworks":[{"name":"m","tasks":[{"id":"t","name":"x","slave_id":"s","state":"TASK_RUNNING","resources":{"ports":7},
	  "statuses":[null,{"state":"TASK_RUNNING","timestamp":2,"healthy":false,"labels":[{"value":"10.9.9.9","key":"MesosContainerizer.NetworkSettings.IPAddress"},{"key":"Docker.NetworkSettings.IPAddress","value":"fd00::1"},{"key":"other","value":null}],
	  "container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"10.1.1.1"},{}],"ip_address":"10.2.2.2"},{"ip_address":"10.3.3.3"},{"ip_addresses":[]},null]}},
	  {"state":"TASK_RUNNING","timestamp":1,"container_status":{"network_infos":[{"ip_address":"10.4.4.4"}]}},
	  {"state":"TASK_RUNNING","timestamp":2.0,"container_status":{"network_infos":[{"ip_address":"10.5.5.5"}]}}],
	  "discovery":{"name":"Disco","ports":{"ports":[{"number":80,"protocol":"tcp","name":"http"},null,{"number":-1}]}}}]}]}`,
	`{"frameworks":[{"name":"m","tasks":[{"id":"t","name":"x","slave_id":"s","state":"TASK_RUNNING","statuses":[{"state":"TASK_RUNNING","timestamp":"late"}]}]}]}`,
	`{"frameworks":[{"name":"m","tasks":[{"id":"t","state":"TASK_RUNNING","discovery":{"name":"d","ports":{"ports":[{"number":1.5}]}}}]}]}`,
	`{"frameworks":[{"name":"m","tasks":[{"id":"t","state":"TASK_RUNNING","discovery":{"name":"","ports":null}},{"id":"u","state":"TASK_RUNNING","discovery":null,"resources":null}]}]}`,
	`{"frameworks":[{"name":"m","tasks":[{"id":"t","state":"TASK_RUNNING","statuses":[{"state":"TASK_RUNNING","healthy":"yes"}]}]}]}`,
	`{"frameworks":[{"name":"m","tasks":[{"id":"t","state":"TASK_RUNNING","resources":{"ports":"[1-3, 5-5]"},"statuses":[{"state":"TASK_RUNNING","timestamp":1e400}]}]}]}`,
	`{"n":[-0,0.5e-3,1E+9,-12.25,true,false,null,"\ud83d\ude00 \u0000",{"a":{"b":[[],{}]}}],"slaves":null,"frameworks":null}`,
	`  {"slaves":[null,{"id":"s","hostname":"h","pid":null}]}  `,
	dupNamesState, invalidUTF8State,
	// Malformed tasks whose state cannot be read count as skipped;
	// completed frameworks keep only well-formed IDs.
	`{"frameworks":[{"name":"m","tasks":[{"id":5,"state":7},{"id":5},{"id":5,"state":null},{"id":5,"state":""},{"id":5,"state":"TASK_KILLED"},{"id":"a","state":7},
	  {"id":5,"state":"x","state":null},{"id":5,"state":"TASK_RUNNING","state":null},{"id":5,"state":null,"State":"TASK_KILLED"}]}]}`,
	`{"completed_frameworks":[{"id":"f1","tasks":[{"id":1}]},{"id":5},{"id":"f2","id":null},{"ID":"f3"},null,7,{"id":""}],"completed_frameworks":null}`,
	`{"completed_frameworks":{"id":"f"}}`, `{"completed_frameworks":[{"id":"a","id":5}],"completed_frameworks":[{"id":"b"}]}`,
	// dcos-net's fields: container addresses of the latest status of any
	// state, host ports from every source, and the shapes that void them.
	`{"frameworks":[{"name":"m","tasks":[{"id":"t","name":"x","state":"TASK_RUNNING","resources":{"ports":"[31000-31001]"},
	  "statuses":[{"state":"TASK_RUNNING","timestamp":2,"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"10.1.1.1"},{"ip_address":"fd00::1"},{"ip_address":"::ffff:10.0.0.1"},{"ip_address":"fe80::1%eth0"},{}],"port_mappings":[{"host_port":1,"container_port":2,"protocol":"UDP"}]}]}},
	    {"state":"TASK_STARTING","timestamp":1,"container_status":{"network_infos":[{"ip_address":"10.2.2.2"}]}}],
	  "container":{"type":"DOCKER","docker":{"port_mappings":[{"host_port":31000,"container_port":80,"protocol":"tcp"}]}},
	  "labels":[{"key":"VIP_PORT1","value":"tcp://1.2.3.4:80"}],
	  "discovery":{"name":"d","ports":{"ports":[{"number":80,"protocol":"tcp","labels":{"labels":[{"key":"network-scope","value":"host"},null,5]}}]}}},
	 {"id":"u","state":"TASK_RUNNING","statuses":[{"state":"TASK_KILLING","timestamp":3,"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"10.3.3.3"}]},{"ip_address":"10.4.4.4"}]}}],
	  "container":{"type":"MESOS","network_infos":[{"port_mappings":[{"host_port":1,"container_port":2}]}]},"labels":{"labels":[{"key":"vip_port9","value":"udp://x"}]}},
	 {"id":"v","state":"TASK_RUNNING","container":{"type":"APPC"},"labels":[{"key":"a"}],"discovery":{"name":"e","ports":{"ports":[{"number":1,"protocol":"tcp","labels":{"labels":[{"key":"network-scope","value":"host"},{"key":"network-scope","value":"host"}]}},null]}}},
	 {"id":"w","state":"TASK_RUNNING","container":{"docker":5,"network_infos":[null]},"labels":[{"key":"VIP_PORT-1","value":"tcp://a"},{"key":"vip_port99999999999999999999","value":"tcp://a"}],
	  "statuses":[{"state":"TASK_RUNNING","container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"10.5.5.5"}],"port_mappings":[{"host_port":1,"container_port":2,"protocol":"tcp"}]}]}}]},
	 {"id":"x","state":"TASK_RUNNING","container":null,"labels":null,"discovery":{"name":"f","ports":{"ports":[{"number":0,"protocol":"udp","labels":{"labels":[{"key":"network-scope","value":"host"}]}}]}},
	  "statuses":[{"state":"TASK_RUNNING","timestamp":1,"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"10.6.6.6"}],"port_mappings":"x"}]}}]}]}]}`,
	// Malformed (but for the nesting within the limit): each must fail.
	``, `null`, `[]`, `{"frameworks":`, `{"frameworks":[{"tasks":[{]}]}`, `{"leader":"x"} trailing`,
	`{"frameworks":{"not":"an array"}}`, "\x00\x01garbage", `<html>502 Bad Gateway</html>`,
	`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":tru}`,
	`{"a":nul`, `{"a" 1}`, `{"a":1,}`, `{"a":[1,]}`, `{"a":[1 2]}`, `{"leader":5}`, `{"leader_info":[]}`,
	`{"slaves":[5]}`, `{"slaves":[{"id":5}]}`, `{"frameworks":[null]}`, `{"frameworks":[{"name":5}]}`,
	`{"frameworks":[{"tasks":{}}]}`, `{"leader_info":{"port":"5050"}}`, `{"a":"unterminated`, `{"a":[[[`,
	`{"a":` + strings.Repeat("[", maxDepth/2) + strings.Repeat("]", maxDepth/2) + `}`,
	`{"a":` + strings.Repeat("[", 2*maxDepth) + strings.Repeat("]", 2*maxDepth) + `}`,
}

// TestDecodeStateMatchesEncodingJSON checks the streaming decoder against
// the encoding/json decoder it replaced: same State or both an error, for
// the fixtures, a synthetic state and the corner cases, read whole and in
// small chunks (values then straddle buffer refills everywhere).
func TestDecodeStateMatchesEncodingJSON(t *testing.T) {
	inputs := map[string][]byte{"synthetic": syntheticState(100, 1000)}
	for i, c := range decodeCases {
		inputs["case "+string(rune('A'+i%26))+strings.Repeat("'", i/26)] = []byte(c)
	}
	fixtures, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	require.NoError(t, err)
	for _, f := range fixtures {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		inputs[filepath.Base(f)] = data
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			want, wantErr := decodeStateRef(bytes.NewReader(data))
			for _, chunk := range []int{0, 1, 7, 4093} {
				var r io.Reader = bytes.NewReader(data)
				if chunk > 0 {
					r = &chunkReader{r: r, n: chunk}
				}
				got, err := DecodeState(r)
				if wantErr != nil {
					require.Error(t, err, "encoding/json: %v", wantErr)
					continue
				}
				require.NoError(t, err)
				require.Equal(t, want, got)
			}
		})
	}
}

// TestDecodeStateDuplicateNamesAndInvalidUTF8 checks that such states
// decode, as encoding/json decodes them.
func TestDecodeStateDuplicateNamesAndInvalidUTF8(t *testing.T) {
	st, err := DecodeState(strings.NewReader(dupNamesState))
	require.NoError(t, err)
	require.Equal(t, "10.0.0.2:5050", st.Leader)
	require.Equal(t, "10.0.0.3:5050", st.PID)
	require.Equal(t, []Slave{{ID: "t", Hostname: "h"}}, st.Slaves)
	require.Len(t, st.Frameworks, 1)
	fw := st.Frameworks[0]
	require.Equal(t, "b", fw.Name)
	require.Len(t, fw.Tasks, 1)
	task := fw.Tasks[0]
	require.Equal(t, "y", task.ID)
	require.False(t, task.Unhealthy)
	require.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.8")}, task.MesosIPs)

	st, err = DecodeState(strings.NewReader(invalidUTF8State))
	require.NoError(t, err)
	require.Len(t, st.Frameworks, 1)
	require.Len(t, st.Frameworks[0].Tasks, 1)
	require.Equal(t, "\uFFFD\uFFFD", st.Frameworks[0].Tasks[0].Name)
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.n)])
}

// TestDecodeStateReadError reports the reader's error.
func TestDecodeStateReadError(t *testing.T) {
	data := syntheticState(5, 20)
	_, err := DecodeState(iotest.TimeoutReader(iotest.HalfReader(bytes.NewReader(data))))
	require.ErrorIs(t, err, iotest.ErrTimeout)
}

// FuzzDecodeState compares the streaming decoder with encoding/json on
// arbitrary input.
func FuzzDecodeState(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := decodeStateRef(bytes.NewReader(data))
		got, err := DecodeState(iotest.HalfReader(bytes.NewReader(data)))
		if wantErr != nil {
			// The old decoder read top-level and framework-level
			// scalars with Decoder.Token, which turns numbers into
			// float64 and so rejected valid JSON such as 1e700; the
			// streaming decoder accepts it.
			if err == nil && !strings.Contains(wantErr.Error(), "cannot unmarshal number") {
				t.Fatalf("encoding/json fails (%v), DecodeState does not", wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("DecodeState: %v; encoding/json succeeds", err)
		}
		require.Equal(t, want, got)
	})
}
