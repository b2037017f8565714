package mesos

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMesosDNSEdges pins the unusual states on which spartan's records
// were compared with Mesos-DNS's generator (records/generator.go,
// records/state/state.go and resolver/resolver.go in mesosphere/mesos-dns).
// Each case says whether spartan matches Mesos-DNS or keeps its own
// behaviour (listed, with the reason, in the README's differences).
func TestMesosDNSEdges(t *testing.T) {
	const running = `"state":"TASK_RUNNING"`
	canon := func(name, id string) string { return name + "-" + taskHash(id) + "-s1" }
	for _, tc := range []struct {
		name    string
		state   string
		want    []string
		notWant []string // lines, or name prefixes ending in " "
	}{{
		// 1. Matches: taskContextRecord builds the canonical name from
		// spec(task.Name) even when it is empty, and the SRV name "_" +
		// "" + "._tcp...". The short name ".marathon.mesos." has an
		// empty label: Mesos-DNS stores it, no question can reach it.
		name: "1 task name sanitizing to nothing",
		state: state(fw("marathon", `{"id":"u","name":"___","slave_id":"A-S1",`+running+`,"resources":{"ports":"[31000-31000]"}},
			{"id":"j","name":"日本語","slave_id":"A-S1",`+running+`},
			{"id":"e","name":"","slave_id":"A-S1",`+running+`}`)),
		want: []string{
			canon("", "u") + ".marathon.mesos. A 10.1.0.1",
			canon("", "u") + ".marathon.slave.mesos. A 10.1.0.1",
			"_._tcp.marathon.mesos. SRV " + canon("", "u") + ".marathon.slave.mesos.:31000",
			"_._udp.marathon.slave.mesos. SRV " + canon("", "u") + ".marathon.slave.mesos.:31000",
			canon("", "j") + ".marathon.mesos. A 10.1.0.1",
			canon("", "e") + ".marathon.mesos. A 10.1.0.1",
		},
		notWant: []string{".marathon.mesos. ", ".marathon.slave.mesos. "},
	}, {
		// 2. Differs: Mesos-DNS also stores the raw name "web+api"
		// (taskRecord's LEGACY pass); spartan publishes a raw name only
		// when it is made of host-name characters (rawNameOK).
		name: "2 DiscoveryInfo name with punctuation",
		state: state(fw("marathon", `{"id":"p","name":"x","slave_id":"A-S1",`+running+`,
			"discovery":{"name":"web+api"}}`)),
		want:    []string{"webapi.marathon.mesos. A 10.1.0.1", canon("webapi", "p") + ".marathon.mesos. A 10.1.0.1"},
		notWant: []string{"web+api.marathon.mesos. ", canon("web+api", "p") + ".marathon.mesos. "},
	}, {
		// 3. Differs: Mesos-DNS's raw pass makes "web..marathon" (never
		// answerable) and the canonical "web.-<hash>-<agent>.marathon",
		// a label starting with '-' below a label "web"; spartan
		// publishes only the sanitized "web".
		name: "3 DiscoveryInfo name ending in a dot",
		state: state(fw("marathon", `{"id":"d","name":"x","slave_id":"A-S1",`+running+`,
			"discovery":{"name":"web."}}`)),
		want:    []string{"web.marathon.mesos. A 10.1.0.1", canon("web", "d") + ".marathon.mesos. A 10.1.0.1"},
		notWant: []string{"web.-" + taskHash("d") + "-s1.marathon.mesos. "},
	}, {
		// 4. Matches: taskContextRecord writes the SRV record of every
		// DiscoveryInfo port, 0 included (formatSRV keeps the number).
		name: "4 DiscoveryInfo port number 0",
		state: state(fw("marathon", `{"id":"z","name":"x","slave_id":"A-S1",`+running+`,
			"discovery":{"name":"zero","ports":{"ports":[{"number":0,"protocol":"tcp"}]}}}`)),
		want: []string{"_zero._tcp.marathon.mesos. SRV " + canon("zero", "z") + ".marathon.mesos.:0"},
	}, {
		// 5. Matches: Task.IPs reads addresses with net.ParseIP, which
		// refuses an IPv6 zone; the netinfo source then yields nothing
		// and the next source (the agent, "host") is used.
		name: "5 IPv6 address with a zone",
		state: state(fw("marathon", `{"id":"v","name":"zoned","slave_id":"A-S1",`+running+`,"statuses":[
			{"state":"TASK_RUNNING","timestamp":1,"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"fe80::1%eth0"}]}]}}]},
			{"id":"w","name":"mixed","slave_id":"A-S1",`+running+`,"statuses":[
			{"state":"TASK_RUNNING","timestamp":1,"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"fe80::1%eth0"},{"ip_address":"172.16.0.7"}]}]}}]}`)),
		want:    []string{"zoned.marathon.mesos. A 10.1.0.1", "mixed.marathon.mesos. A 172.16.0.7"},
		notWant: []string{"zoned.marathon.mesos. AAAA fe80::1", "mixed.marathon.mesos. AAAA fe80::1", "mixed.marathon.mesos. A 10.1.0.1"},
	}, {
		// 6. Matches: Mesos-DNS stores the raw name "Web_App" as given,
		// but HandleMesos lower-cases every question, so it is never
		// answered; spartan does not publish it. The sanitized name is
		// served by both.
		name: "6 upper-case raw DiscoveryInfo name",
		state: state(fw("marathon", `{"id":"c","name":"x","slave_id":"A-S1",`+running+`,
			"discovery":{"name":"Web_App"}}`)),
		want:    []string{"web-app.marathon.mesos. A 10.1.0.1"},
		notWant: []string{"web_app.marathon.mesos. "},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			lines, _ := genLines(t, tc.state, nil)
			for _, w := range tc.want {
				require.Contains(t, lines, w)
			}
			for _, nw := range tc.notWant {
				for _, l := range lines {
					if strings.HasSuffix(nw, " ") {
						require.False(t, strings.HasPrefix(l, nw), "%q present: %s", nw, l)
					} else {
						require.NotEqual(t, nw, l)
					}
				}
			}
		})
	}
}

// TestEnumerateSharedRecord (edge 7, matches): a record two tasks share
// (two instances of an app on one agent share task.fw.slave.domain) is
// listed by /v1/enumerate under the first task only, as Mesos-DNS's
// insertTaskRR lists a record only when it adds it to the zone.
func TestEnumerateSharedRecord(t *testing.T) {
	const running = `"state":"TASK_RUNNING"`
	st, err := DecodeState(strings.NewReader(state(fw("marathon",
		`{"id":"a1","name":"app","slave_id":"A-S1",`+running+`},{"id":"a2","name":"app","slave_id":"A-S1",`+running+`}`))))
	require.NoError(t, err)
	m := &Master{opt: *goldenOptions()}
	data := m.enumerate(st)
	require.Len(t, data.Frameworks, 1)
	tasks := data.Frameworks[0].Tasks
	require.Len(t, tasks, 2)
	shared := EnumerableRecord{Name: "app.marathon.mesos.", Host: "10.1.0.1", Rtype: "A"}
	require.Contains(t, tasks[0].Records, shared)
	require.NotContains(t, tasks[1].Records, shared)
	// Each task's own canonical record stays with it.
	require.Contains(t, tasks[1].Records, EnumerableRecord{Name: "app-" + taskHash("a2") + "-s1.marathon.mesos.", Host: "10.1.0.1", Rtype: "A"})
}
