package mesos

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLabels(t *testing.T) {
	for _, tc := range []struct {
		in, rfc1123, rfc952 string
	}{
		{"nginx", "nginx", "nginx"},
		{"Big.Dog_2", "big-dog-2", "big-dog-2"},
		{"chronos with a space AND MIXED CASE", "chronoswithaspaceandmixedcase", "chronoswithaspaceandmixe"},
		{"--lead-and-trail--", "lead-and-trail", "lead-and-trail"},
		{"123abc", "123abc", "abc"},
		{"-0-9x", "0-9x", "x"},
		{"héllo wörld!", "hllowrld", "hllowrld"},
		{"!!!", "", ""},
		{"", "", ""},
		// Cut at 63 (24), trailing '-' trimmed and refilled from what
		// followed the cut, as Mesos-DNS does.
		{strings.Repeat("a", 70), strings.Repeat("a", 63), strings.Repeat("a", 24)},
		{strings.Repeat("a", 62) + "-b" + strings.Repeat("c", 10), strings.Repeat("a", 62) + "b", strings.Repeat("a", 24)},
		{strings.Repeat("a", 23) + "--bcd", strings.Repeat("a", 23) + "--bcd", strings.Repeat("a", 23) + "b"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			require.Equal(t, tc.rfc1123, RFC1123(tc.in), "RFC 1123")
			require.Equal(t, tc.rfc952, RFC952(tc.in), "RFC 952")
			require.LessOrEqual(t, len(RFC1123(tc.in)), 63)
			require.LessOrEqual(t, len(RFC952(tc.in)), 24)
		})
	}
}

func TestDomainFrag(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"marathon", "marathon"},
		{"Metronome.Jobs", "metronome.jobs"},
		{"chronos with a space AND MIXED CASE-2.0.1", "chronoswithaspaceandmixedcase-2.0.1"},
		{"a..b.", "a.b"},
		{"..!!..", ""},
		{"my_fw.v1", "my-fw.v1"},
	} {
		require.Equal(t, tc.want, domainFrag(tc.in, RFC1123), tc.in)
	}
}

func TestTaskHashAndAgentTail(t *testing.T) {
	// Values from the golden file.
	for id, want := range map[string]string{
		"liquor-store.b8db9f73-562f-11e4-a088-c20493233aa5": "4dfjd",
		"liquor-store.b71166c1-562f-11e4-a088-c20493233aa5": "zasmd",
		"toy-store.b8db9f73-562f-11e4-a088-c20493233aa5":    "go588",
		"chronos.49b91a9a-3dda-11e4-a088-c20493233aa5":      "rx8q6",
	} {
		require.Equal(t, want, taskHash(id), id)
	}
	for id, want := range map[string]string{
		"20140803-125133-3041283216-5050-2410-0":   "0",
		"b2f8b8c5-1c3e-4bcb-9d1f-4c1c7d5e3a10-S12": "s12",
		"noDashes": "nodashes",
		"20140827-000744-3041283216-5050-2116-S1000": "s1000",
	} {
		require.Equal(t, want, agentTail(id), id)
	}
}

func TestFit(t *testing.T) {
	long := strings.Repeat("x", 63)
	fit := func(name, suffix string) string {
		t.Helper()
		s, ok := fitLast(name, suffix)
		require.True(t, ok, "%q %q", name, suffix)
		return s
	}
	require.Equal(t, "abc-hash-s1", fit("abc", "-hash-s1"))
	got := fit(long, "-ab3de-s12")
	require.Len(t, got, 63)
	require.True(t, strings.HasSuffix(got, "-ab3de-s12"))
	// The last label of a dotted (raw DiscoveryInfo) name is the one cut.
	got = fit("big."+long, "-ab3de-s12")
	require.True(t, strings.HasPrefix(got, "big.x"))
	require.Len(t, got, 4+63)
	// A '-' left at the cut is trimmed.
	require.Equal(t, strings.Repeat("x", 52)+"-ab3de-s12", fit(strings.Repeat("x", 52)+"-yyyy", "-ab3de-s12"))
	// A suffix of exactly 63 octets leaves no room for the task; one
	// octet more and no label fits.
	require.Equal(t, "-ab3de-"+strings.Repeat("s", 56), fit("web", "-ab3de-"+strings.Repeat("s", 56)))
	_, ok := fitLast("web", "-ab3de-"+strings.Repeat("s", 57))
	require.False(t, ok)

	require.Equal(t, "_web", fitFirst("web"))
	require.Equal(t, "_"+strings.Repeat("x", 62), fitFirst(long))
	require.Equal(t, "_"+strings.Repeat("x", 62)+".dog", fitFirst(long+".dog"))
	require.Equal(t, "_big."+long, fitFirst("big."+long))
}

// genLines decodes stateJSON, generates with the golden options changed by
// mod, and returns the records as "NAME TYPE VALUE" lines.
func genLines(t *testing.T, stateJSON string, mod func(*Options)) ([]string, GenStats) {
	t.Helper()
	st, err := DecodeState(strings.NewReader(stateJSON))
	require.NoError(t, err)
	opt := goldenOptions()
	if mod != nil {
		mod(opt)
	}
	z, stats := BuildZone(st, opt, 1)
	return recordLines(z), stats
}

// state wraps frameworks and slaves JSON into a state with a leader.
func state(frameworks string) string {
	return `{"leader":"master@10.0.0.1:5050","slaves":[
		{"id":"A-S1","pid":"slave(1)@10.1.0.1:5051","hostname":"agent1"},
		{"id":"A-S2","pid":"slave(1)@[fd00::2]:5051","hostname":"agent2"}],
	 "frameworks":[` + frameworks + `]}`
}

func fw(name, tasks string) string {
	return `{"id":"fw-1","name":"` + name + `","pid":"scheduler(1)@10.2.0.1:8080","tasks":[` + tasks + `]}`
}

func TestNamingRules(t *testing.T) {
	const running = `"state":"TASK_RUNNING"`
	for _, tc := range []struct {
		name    string
		state   string
		mod     func(*Options)
		want    []string // lines that must be present
		notWant []string // lines (or name prefixes ending in " ") that must be absent
	}{{
		name:  "task A, canonical A and agent A records",
		state: state(fw("marathon", `{"id":"web.1","name":"Web_Server","slave_id":"A-S1",`+running+`}`)),
		want: []string{
			"web-server.marathon.mesos. A 10.1.0.1",
			"web-server-" + taskHash("web.1") + "-s1.marathon.mesos. A 10.1.0.1",
			"web-server.marathon.slave.mesos. A 10.1.0.1",
			"web-server-" + taskHash("web.1") + "-s1.marathon.slave.mesos. A 10.1.0.1",
			"marathon.mesos. A 10.2.0.1",
			"_framework._tcp.marathon.mesos. SRV marathon.mesos.:8080",
		},
	}, {
		name: "only running tasks on known agents",
		state: state(fw("marathon", `{"id":"a","name":"staging","slave_id":"A-S1","state":"TASK_STAGING"},
			{"id":"b","name":"lost","slave_id":"A-S9",`+running+`}`)),
		notWant: []string{"staging.marathon.mesos. ", "lost.marathon.mesos. "},
	}, {
		name:  "IPv6 agent gives AAAA",
		state: state(fw("marathon", `{"id":"a","name":"v6","slave_id":"A-S2",`+running+`}`)),
		want: []string{
			"v6.marathon.mesos. AAAA fd00::2", "v6.marathon.slave.mesos. AAAA fd00::2",
			"slave.mesos. AAAA fd00::2", "slave.mesos. A 10.1.0.1", "_slave._tcp.mesos. SRV slave.mesos.:5051",
		},
	}, {
		name: "netinfo first, from the latest running status",
		state: state(fw("marathon", `{"id":"a","name":"c","slave_id":"A-S1",`+running+`,"statuses":[
			{"state":"TASK_RUNNING","timestamp":2,"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"172.16.0.2"},{"ip_address":"fd01::2"}]}]},
			 "labels":[{"key":"MesosContainerizer.NetworkSettings.IPAddress","value":"172.17.0.9"}]},
			{"state":"TASK_RUNNING","timestamp":1,"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"172.16.0.1"}]}]}}]}`)),
		want:    []string{"c.marathon.mesos. A 172.16.0.2", "c.marathon.mesos. AAAA fd01::2", "c.marathon.slave.mesos. A 10.1.0.1"},
		notWant: []string{"c.marathon.mesos. A 172.16.0.1", "c.marathon.mesos. A 172.17.0.9", "c.marathon.mesos. A 10.1.0.1"},
	}, {
		name: "mesos label when no netinfo; docker only when listed",
		state: state(fw("marathon", `{"id":"a","name":"c","slave_id":"A-S1",`+running+`,"statuses":[
			{"state":"TASK_RUNNING","timestamp":1,"labels":[{"key":"Docker.NetworkSettings.IPAddress","value":"172.17.0.3"}]}]}`)),
		want:    []string{"c.marathon.mesos. A 10.1.0.1"},
		notWant: []string{"c.marathon.mesos. A 172.17.0.3"},
	}, {
		name: "docker source",
		state: state(fw("marathon", `{"id":"a","name":"c","slave_id":"A-S1",`+running+`,"statuses":[
			{"state":"TASK_RUNNING","timestamp":1,"labels":[{"key":"Docker.NetworkSettings.IPAddress","value":"172.17.0.3"}]}]}`)),
		mod:     func(o *Options) { o.IPSources = []string{"docker", "host"} },
		want:    []string{"c.marathon.mesos. A 172.17.0.3"},
		notWant: []string{"c.marathon.mesos. A 10.1.0.1"},
	}, {
		name: "host first",
		state: state(fw("marathon", `{"id":"a","name":"c","slave_id":"A-S1",`+running+`,"statuses":[
			{"state":"TASK_RUNNING","timestamp":1,"container_status":{"network_infos":[{"ip_address":"172.16.0.5"}]}}]}`)),
		mod:     func(o *Options) { o.IPSources = []string{"host", "netinfo"} },
		want:    []string{"c.marathon.mesos. A 10.1.0.1"},
		notWant: []string{"c.marathon.mesos. A 172.16.0.5"},
	}, {
		name:  "SRV for every host port, tcp and udp, with and without .slave",
		state: state(fw("marathon", `{"id":"a","name":"web","slave_id":"A-S1",`+running+`,"resources":{"ports":"[31000-31001, 31005-31005]"}}`)),
		want: func() []string {
			var out []string
			tgt := "web-" + taskHash("a") + "-s1.marathon.slave.mesos.:"
			for _, p := range []string{"31000", "31001", "31005"} {
				for _, n := range []string{"_web._tcp.marathon.mesos.", "_web._udp.marathon.mesos.", "_web._tcp.marathon.slave.mesos.", "_web._udp.marathon.slave.mesos."} {
					out = append(out, n+" SRV "+tgt+p)
				}
			}
			return out
		}(),
		notWant: []string{"_web._tcp.marathon.mesos. SRV web-" + taskHash("a") + "-s1.marathon.slave.mesos.:31002"},
	}, {
		name: "DiscoveryInfo: name replaces task name, raw and sanitized; ports with protocol and name",
		state: state(fw("marathon", `{"id":"a","name":"ignored","slave_id":"A-S1",`+running+`,"resources":{"ports":"[31000-31000]"},
			"discovery":{"name":"my_app","ports":{"ports":[{"number":80,"protocol":"tcp","name":"HTTP"},{"number":53,"name":"dns"},{"number":9000,"protocol":"UDP"}]}}}`)),
		want: []string{
			"my-app.marathon.mesos. A 10.1.0.1",
			"my_app.marathon.mesos. A 10.1.0.1",
			"_my-app._tcp.marathon.slave.mesos. SRV my-app-" + taskHash("a") + "-s1.marathon.slave.mesos.:31000",
			"_my-app._udp.marathon.slave.mesos. SRV my-app-" + taskHash("a") + "-s1.marathon.slave.mesos.:31000",
			"_my-app._tcp.marathon.mesos. SRV my-app-" + taskHash("a") + "-s1.marathon.mesos.:80",
			"_http._my-app._tcp.marathon.mesos. SRV my-app-" + taskHash("a") + "-s1.marathon.mesos.:80",
			"_my-app._tcp.marathon.mesos. SRV my-app-" + taskHash("a") + "-s1.marathon.mesos.:53",
			"_my-app._udp.marathon.mesos. SRV my-app-" + taskHash("a") + "-s1.marathon.mesos.:53",
			"_dns._my-app._udp.marathon.mesos. SRV my-app-" + taskHash("a") + "-s1.marathon.mesos.:53",
			"_my-app._udp.marathon.mesos. SRV my-app-" + taskHash("a") + "-s1.marathon.mesos.:9000",
			"_my_app._tcp.marathon.mesos. SRV my_app-" + taskHash("a") + "-s1.marathon.mesos.:80",
		},
		notWant: []string{
			"ignored.marathon.mesos. ",
			// Host ports only under .slave when DiscoveryInfo is present.
			"_my-app._tcp.marathon.mesos. SRV my-app-" + taskHash("a") + "-s1.marathon.slave.mesos.:31000",
			"_my-app._tcp.marathon.mesos. SRV my-app-" + taskHash("a") + "-s1.marathon.mesos.:9000",
		},
	}, {
		name: "raw DiscoveryInfo name that is not a host name is only published sanitized",
		state: state(fw("marathon", `{"id":"a","name":"x","slave_id":"A-S1",`+running+`,
			"discovery":{"name":"my app"}}`)),
		want:    []string{"myapp.marathon.mesos. A 10.1.0.1"},
		notWant: []string{"my app.marathon.mesos. "},
	}, {
		name:  "long task name: canonical label cut to 63 octets, hash and agent kept",
		state: state(fw("marathon", `{"id":"a","name":"`+strings.Repeat("l", 70)+`","slave_id":"A-S1",`+running+`,"resources":{"ports":"[1-1]"}}`)),
		want: []string{
			strings.Repeat("l", 63) + ".marathon.mesos. A 10.1.0.1",
			strings.Repeat("l", 63-len("-xxxxx-s1")) + "-" + taskHash("a") + "-s1.marathon.mesos. A 10.1.0.1",
			"_" + strings.Repeat("l", 62) + "._tcp.marathon.mesos. SRV " + strings.Repeat("l", 63-len("-xxxxx-s1")) + "-" + taskHash("a") + "-s1.marathon.slave.mesos.:1",
		},
	}, {
		name:  "RFC 952 labels",
		state: state(fw("9Frame.Work", `{"id":"a","name":"1234-a-very-long-task-name-indeed","slave_id":"A-S1",`+running+`}`)),
		mod:   func(o *Options) { o.Spec = RFC952 },
		want:  []string{"a-very-long-task-name-in.frame.work.mesos. A 10.1.0.1"},
	}, {
		name: "healthy only",
		state: state(fw("marathon", `{"id":"a","name":"sick","slave_id":"A-S1",`+running+`,"statuses":[{"state":"TASK_RUNNING","timestamp":1,"healthy":false}]},
			{"id":"b","name":"well","slave_id":"A-S1",`+running+`,"statuses":[{"state":"TASK_RUNNING","timestamp":1,"healthy":true}]},
			{"id":"c","name":"unknown","slave_id":"A-S1",`+running+`}`)),
		mod:     func(o *Options) { o.HealthyOnly = true },
		want:    []string{"well.marathon.mesos. A 10.1.0.1", "unknown.marathon.mesos. A 10.1.0.1"},
		notWant: []string{"sick.marathon.mesos. "},
	}, {
		name:  "unhealthy tasks kept by default",
		state: state(fw("marathon", `{"id":"a","name":"sick","slave_id":"A-S1",`+running+`,"statuses":[{"state":"TASK_RUNNING","timestamp":1,"healthy":false}]}`)),
		want:  []string{"sick.marathon.mesos. A 10.1.0.1"},
	}, {
		name:  "framework without PID: host name resolved, no SRV",
		state: `{"leader":"master@10.0.0.1:5050","frameworks":[{"name":"np","hostname":"localhost"},{"name":"nowhere","hostname":"nx.invalid"}]}`,
		want:  []string{"np.mesos. A 127.0.0.1"},
		notWant: []string{
			"_framework._tcp.np.mesos. ", "nowhere.mesos. ",
		},
	}, {
		name:  "leader in the masters list keeps its slot",
		state: state(""),
		mod:   func(o *Options) { o.Masters = []string{"10.0.0.3:5050", "10.0.0.1:5050", "10.0.0.2:5050"} },
		want: []string{
			"leader.mesos. A 10.0.0.1", "_leader._tcp.mesos. SRV leader.mesos.:5050", "_leader._udp.mesos. SRV leader.mesos.:5050",
			"master.mesos. A 10.0.0.1", "master.mesos. A 10.0.0.2", "master.mesos. A 10.0.0.3",
			"master0.mesos. A 10.0.0.3", "master1.mesos. A 10.0.0.1", "master2.mesos. A 10.0.0.2",
		},
		notWant: []string{"master3.mesos. "},
	}, {
		name:    "leader not listed gets the next number; duplicates skipped",
		state:   state(""),
		mod:     func(o *Options) { o.Masters = []string{"10.0.0.3:5050", "10.0.0.3:5050", "[fd00::4]:5050"} },
		want:    []string{"master0.mesos. A 10.0.0.3", "master1.mesos. AAAA fd00::4", "master2.mesos. A 10.0.0.1", "master.mesos. AAAA fd00::4"},
		notWant: []string{"master3.mesos. "},
	}, {
		name:    "no leader: no master records",
		state:   `{"frameworks":[]}`,
		notWant: []string{"leader.mesos. ", "master.mesos. ", "master0.mesos. "},
		want:    []string{"ns1.mesos. A 127.0.0.1"},
	}, {
		name:  "leader from leader_info",
		state: `{"leader_info":{"id":"x","pid":"master@10.0.0.7:5050","port":5050,"address":{"ip":"10.0.0.7","port":5050}}}`,
		want:  []string{"leader.mesos. A 10.0.0.7"},
	}, {
		name:  "other domain",
		state: state(fw("marathon", `{"id":"a","name":"web","slave_id":"A-S1",`+running+`}`)),
		mod: func(o *Options) {
			o.Domain, o.NS = "cluster.example.", "ns1.cluster.example."
		},
		want: []string{"web.marathon.cluster.example. A 10.1.0.1", "ns1.cluster.example. A 127.0.0.1", "leader.cluster.example. A 10.0.0.1"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			lines, _ := genLines(t, tc.state, tc.mod)
			for _, w := range tc.want {
				require.Contains(t, lines, w)
			}
			for _, nw := range tc.notWant {
				if strings.HasSuffix(nw, " ") {
					require.False(t, slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, nw) }), "unexpected %q in\n%s", nw, strings.Join(lines, "\n"))
				} else {
					require.NotContains(t, lines, nw)
				}
			}
		})
	}
}

// TestGenerationLimits: what the generator leaves out rather than publish
// names DNS cannot carry or an unbounded number of records, and how it
// counts that.
func TestGenerationLimits(t *testing.T) {
	const running = `"state":"TASK_RUNNING"`
	longTail := strings.Repeat("s", 57) // "-hash-" + 57 octets: 64
	for _, tc := range []struct {
		name        string
		state       string
		want        []string // lines that must be present
		notWant     []string // name prefixes that must be absent
		srvName     string   // an SRV owner whose records are counted
		srvs        int
		dropped     int
		portsCapped int
	}{{
		name: "agent ID tail too long for any canonical label",
		state: `{"leader":"master@10.0.0.1:5050","slaves":[{"id":"A-` + longTail + `","pid":"slave(1)@10.1.0.1:5051"}],
			"frameworks":[` + fw("marathon", `{"id":"a","name":"web","slave_id":"A-`+longTail+`",`+running+`,"resources":{"ports":"[31000-31000]"}}`) + `]}`,
		want:    []string{"web.marathon.mesos. A 10.1.0.1", "web.marathon.slave.mesos. A 10.1.0.1"},
		notWant: []string{"web-" + taskHash("a") + "-", "_web._tcp."},
		dropped: 1,
	}, {
		name: "agent ID tail that just fits",
		state: `{"leader":"master@10.0.0.1:5050","slaves":[{"id":"A-` + longTail[1:] + `","pid":"slave(1)@10.1.0.1:5051"}],
			"frameworks":[` + fw("marathon", `{"id":"a","name":"web","slave_id":"A-`+longTail[1:]+`",`+running+`}`) + `]}`,
		want: []string{"-" + taskHash("a") + "-" + longTail[1:] + ".marathon.mesos. A 10.1.0.1"},
	}, {
		name:        "host ports capped per task",
		state:       state(fw("marathon", `{"id":"a","name":"web","slave_id":"A-S1",`+running+`,"resources":{"ports":"[1-65535]"}}`)),
		want:        []string{"_web._tcp.marathon.mesos. SRV web-" + taskHash("a") + "-s1.marathon.slave.mesos.:1024"},
		srvName:     "_web._tcp.marathon.slave.mesos.",
		srvs:        MaxTaskPorts,
		portsCapped: 1,
	}, {
		name:    "host ports up to the cap are all published",
		state:   state(fw("marathon", `{"id":"a","name":"web","slave_id":"A-S1",`+running+`,"resources":{"ports":"[2000-2999, 5000-5023]"}}`)),
		want:    []string{"_web._udp.marathon.mesos. SRV web-" + taskHash("a") + "-s1.marathon.slave.mesos.:5023"},
		srvName: "_web._udp.marathon.slave.mesos.",
		srvs:    MaxTaskPorts,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			lines, stats := genLines(t, tc.state, nil)
			srvs := 0
			for _, l := range lines {
				name, _, _ := strings.Cut(l, " ")
				for label := range strings.SplitSeq(name, ".") {
					require.LessOrEqual(t, len(label), 63, l)
				}
				if tc.srvName != "" && strings.HasPrefix(l, tc.srvName+" SRV ") {
					srvs++
				}
			}
			for _, w := range tc.want {
				require.Contains(t, lines, w)
			}
			for _, nw := range tc.notWant {
				require.False(t, slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, nw) }), "unexpected %q in\n%s", nw, strings.Join(lines, "\n"))
			}
			require.Equal(t, tc.srvs, srvs)
			require.Equal(t, tc.dropped, stats.Dropped)
			require.Equal(t, tc.portsCapped, stats.PortsCapped)
		})
	}
}

func TestDecodeState(t *testing.T) {
	t.Run("malformed running task is skipped and counted", func(t *testing.T) {
		st, err := DecodeState(strings.NewReader(state(fw("m",
			`{"id":"a","name":"ok","slave_id":"A-S1","state":"TASK_RUNNING"},
			 {"id":"b","state":"TASK_RUNNING","name":["not","a","string"]}`))))
		require.NoError(t, err)
		require.Len(t, st.Frameworks[0].Tasks, 1)
		require.Equal(t, 1, st.Skipped)
	})
	t.Run("unknown fields and big unused members are ignored", func(t *testing.T) {
		st, err := DecodeState(strings.NewReader(`{"version":"1.9","flags":{"a":"b"},"completed_frameworks":[{"tasks":[1,2,{"x":[]}]}],
			"leader":"master@10.0.0.1:5050","frameworks":[{"name":"m","completed_tasks":[{"id":"x"}],"extra":{"deep":[[[]]]},"pid":null,"tasks":null}],
			"slaves":[{"id":"s","pid":"slave(1)@10.1.0.1:5051","attributes":{"rack":"r1"},"resources":{"ports":"[1-2]"}}]}`))
		require.NoError(t, err)
		require.Equal(t, "10.0.0.1:5050", st.Leader)
		require.Len(t, st.Frameworks, 1)
		require.Equal(t, "m", st.Frameworks[0].Name)
		require.Len(t, st.Slaves, 1)
	})
	t.Run("ports", func(t *testing.T) {
		for in, want := range map[string][]PortRange{
			`"[31000-31001, 31005-31005]"`: {{31000, 31001}, {31005, 31005}},
			`"[]"`:                         nil,
			`"[0-3, x-9, 9-1, 70000-70001, 65535-99999]"`: {{1, 3}, {65535, 65535}},
			`42`: nil,
		} {
			require.Equal(t, want, parsePorts([]byte(in)), in)
		}
	})
	for _, bad := range []string{
		``, `null`, `[]`, `{"frameworks":`, `{"frameworks":[{"tasks":[{]}]}`, `{"leader":"x"} trailing`,
		`{"frameworks":{"not":"an array"}}`, "\x00\x01garbage", `<html>502 Bad Gateway</html>`,
	} {
		t.Run("garbage "+bad, func(t *testing.T) {
			_, err := DecodeState(strings.NewReader(bad))
			require.Error(t, err)
		})
	}
}

func TestHostIPsPicksOneOfEachFamily(t *testing.T) {
	g := &generator{opt: &Options{Resolve: func(string) []netip.Addr {
		return []netip.Addr{
			netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
			netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"),
		}
	}}, resolved: map[string][]netip.Addr{}}
	require.Equal(t, []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}, g.hostIPs("sched.example"))
	require.Equal(t, []netip.Addr{netip.MustParseAddr("192.0.2.9")}, g.hostIPs("::ffff:192.0.2.9"))
}
