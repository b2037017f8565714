package mesos

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spartan-dns/spartan/internal/httpserve"
	"github.com/spartan-dns/spartan/internal/testsupport"
	"github.com/stretchr/testify/require"
)

func apiGet(t *testing.T, srv *httptest.Server, path string, v any) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, path)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v), path)
}

func TestHTTPAPI(t *testing.T) {
	m := newMaster(t, masterConfig(t, []string{"144.76.157.37:5050"}, `,"http":"127.0.0.1:8123"`))
	m.UseState(DemoState)
	require.NoError(t, m.Poll(t.Context()))
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)

	var version map[string]string
	apiGet(t, srv, "/v1/version", &version)
	require.Equal(t, "spartan", version["Service"])
	require.Contains(t, version, "URL")
	require.Contains(t, version, "Version")

	// Mesos-DNS's records.Config, marshalled with its Go field names.
	var cfg map[string]any
	apiGet(t, srv, "/v1/config", &cfg)
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	require.ElementsMatch(t, []string{
		"RefreshSeconds", "Port", "Timeout", "StateTimeoutSeconds", "ZkDetectionTimeout", "HttpPort", "TTL",
		"SOASerial", "SOARefresh", "SOARetry", "SOAExpire", "SOAMinttl", "SOAMname", "SOARname",
		"Masters", "Resolvers", "IPSources", "Zk", "Domain", "File", "Listener", "HTTPListener",
		"RecurseOn", "DnsOn", "HttpOn", "ExternalOn", "EnforceRFC952", "EnumerationOn", "MesosHTTPSOn",
		"CACertFile", "MesosCredentials", "IAMConfigFile", "MesosAuthentication",
		"SRVRecordDefaultWeight", "ZoneResolvers", "SetTruncateBit", "CertFile", "KeyFile",
	}, keys)
	for key, want := range map[string]any{
		"SetTruncateBit":         true,
		"SRVRecordDefaultWeight": 1.0,
		"ZoneResolvers":          map[string]any{},
		"Domain":                 "mesos",
		"Masters":                []any{"144.76.157.37:5050"},
		"RefreshSeconds":         30.0,
		"StateTimeoutSeconds":    1.0,
		"TTL":                    60.0,
		"Port":                   61053.0,
		"Listener":               "127.0.0.1",
		"HttpPort":               8123.0,
		"HTTPListener":           "127.0.0.1",
		"HttpOn":                 true,
		"DnsOn":                  true,
		"RecurseOn":              false,
		"ExternalOn":             false,
		"Resolvers":              []any{},
		"IPSources":              []any{"netinfo", "mesos", "host"},
		"EnforceRFC952":          false,
		"SOAMname":               "ns1.mesos.",
		"SOARname":               "root.ns1.mesos.",
		"SOARefresh":             60.0,
		"SOARetry":               600.0,
		"SOAExpire":              86400.0,
		"SOAMinttl":              60.0,
		"SOASerial":              float64(m.Store().Load().Serial()),
		"Zk":                     "",
		"ZkDetectionTimeout":     30.0,
		"MesosCredentials":       map[string]any{"Principal": "", "Secret": ""},
	} {
		require.Equal(t, want, cfg[key], key)
	}

	for _, tc := range []struct {
		path string
		want []hostRecord
	}{
		{"/v1/hosts/nginx.marathon.mesos", []hostRecord{{"nginx.marathon.mesos.", "10.3.0.3"}}},
		{"/v1/hosts/NGINX.Marathon.Mesos.", []hostRecord{{"nginx.marathon.mesos.", "10.3.0.3"}}},
		{"/v1/hosts/toy-store.ipv6-framework.slave.mesos", []hostRecord{{"toy-store.ipv6-framework.slave.mesos.", "2001:db8::1"}}},
		{"/v1/hosts/missing.marathon.mesos", []hostRecord{{}}},
	} {
		var got []hostRecord
		apiGet(t, srv, tc.path, &got)
		require.ElementsMatch(t, tc.want, got, tc.path)
	}

	var services []serviceRecord
	apiGet(t, srv, "/v1/services/_car-store._tcp.marathon.mesos", &services)
	require.ElementsMatch(t, []serviceRecord{
		{"_car-store._tcp.marathon.mesos.", "car-store-zinaz-0.marathon.slave.mesos.", "1.2.3.11", "31364"},
		{"_car-store._tcp.marathon.mesos.", "car-store-zinaz-0.marathon.slave.mesos.", "1.2.3.11", "31365"},
	}, services)
	apiGet(t, srv, "/v1/services/_nope._tcp.marathon.mesos", &services)
	require.Equal(t, []serviceRecord{{}}, services)

	var enum EnumerationData
	apiGet(t, srv, "/v1/enumerate", &enum)
	byName := map[string]*EnumerableFramework{}
	for _, fw := range enum.Frameworks {
		byName[fw.Name] = fw
	}
	require.Contains(t, byName, "no pid")
	require.Empty(t, byName["no pid"].Tasks)
	marathon := byName["marathon"]
	require.NotNil(t, marathon)
	var nginx *EnumerableTask
	for _, task := range marathon.Tasks {
		if task.Name == "nginx" {
			nginx = task
		}
	}
	require.NotNil(t, nginx)
	require.Equal(t, "nginx.1bc32344-3dda-11e4-a088-c20493233aa5", nginx.ID)
	require.ElementsMatch(t, []EnumerableRecord{
		{"nginx.marathon.mesos.", "10.3.0.3", "A"},
		{"nginx-6ud99-0.marathon.mesos.", "10.3.0.3", "A"},
		{"nginx.marathon.slave.mesos.", "1.2.3.11", "A"},
		{"nginx-6ud99-0.marathon.slave.mesos.", "1.2.3.11", "A"},
	}, nginx.Records)

	resp, err := srv.Client().Post(srv.URL+"/v1/version", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestEnumerateBeforeFirstPoll(t *testing.T) {
	m := newMaster(t, masterConfig(t, []string{"127.0.0.1:1"}, ""))
	require.NotNil(t, m.Enumerate().Frameworks)
	require.Empty(t, m.Enumerate().Frameworks)
}

// TestEnumerateCachedPerZone: /v1/enumerate is generated once per served
// zone, on the first request, and again only after a poll swapped in a
// changed zone.
func TestEnumerateCachedPerZone(t *testing.T) {
	fake := testsupport.NewFakeMesosMaster(t, fixtureState(t))
	m := newMaster(t, masterConfig(t, []string{fake.Addr()}, ""))
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	taskNames := func() []string {
		var enum EnumerationData
		apiGet(t, srv, "/v1/enumerate", &enum)
		var names []string
		for _, fw := range enum.Frameworks {
			for _, task := range fw.Tasks {
				names = append(names, task.Name)
			}
		}
		return names
	}

	require.NoError(t, m.Poll(t.Context()))
	builds := m.enumBuilds.Load()
	first := taskNames()
	require.Contains(t, first, "nginx")
	for range 3 {
		require.Equal(t, first, taskNames())
	}
	require.Equal(t, builds+1, m.enumBuilds.Load(), "one build for four requests")

	// The same state again: the same zone, the same enumeration.
	require.NoError(t, m.Poll(t.Context()))
	require.Equal(t, first, taskNames())
	require.Equal(t, builds+1, m.enumBuilds.Load())

	// A changed state swaps the zone in: the next request enumerates it.
	fake.SetState(t, []byte(strings.Replace(string(fixtureState(t)), `"name": "nginx"`, `"name": "nginx2"`, 1)))
	require.NoError(t, m.Poll(t.Context()))
	require.Equal(t, builds+1, m.enumBuilds.Load(), "built lazily, not by the poll")
	second := taskNames()
	require.Contains(t, second, "nginx2")
	require.NotContains(t, second, "nginx")
	require.Equal(t, second, taskNames())
	require.Equal(t, builds+2, m.enumBuilds.Load())
}

// TestAPIListenerBoundsClients: master.http runs with timeouts and a
// connection cap, so an idle keep-alive client is closed after the idle
// timeout and one that never finishes its headers is cut off (both
// shortened here).
func TestAPIListenerBoundsClients(t *testing.T) {
	m := newMaster(t, masterConfig(t, []string{"144.76.157.37:5050"}, `,"http":"127.0.0.1:0"`))
	m.UseState(DemoState)
	m.httpLimits = httpserve.Limits{IdleTimeout: 50 * time.Millisecond, ReadHeaderTimeout: 50 * time.Millisecond}
	require.NoError(t, m.ListenHTTP(t.Context()))
	runMaster(t, m)

	idle := testsupport.DialHTTP(t, m.HTTPAddr())
	idle.Send(t, "/v1/version")
	require.Equal(t, http.StatusOK, idle.Read(t))
	require.Eventually(t, idle.ClosedByServer(), 10*time.Second, 10*time.Millisecond)

	slow := testsupport.DialHTTP(t, m.HTTPAddr())
	slow.Write(t, "GET /v1/version HTTP/1.1\r\n")
	require.Eventually(t, slow.ClosedByServer(), 10*time.Second, 10*time.Millisecond)
}

// TestHTTPAXFRAndRecords checks Mesos-DNS's /v1/axfr (its models.AXFR,
// field for field) and dcos-net's /v1/records (the objects of
// dcos_rest_dns_handler:record_to_term) against the served zones.
func TestHTTPAXFRAndRecords(t *testing.T) {
	m := newMaster(t, masterConfig(t, []string{"144.76.157.37:5050"}, `,"http":"127.0.0.1:8123"`))
	m.UseState(DemoState)
	require.NoError(t, m.Poll(t.Context()))
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)

	var raw map[string]json.RawMessage
	apiGet(t, srv, "/v1/axfr", &raw)
	require.ElementsMatch(t, []string{"TTL", "Serial", "RefreshSeconds", "Mname", "Rname", "Domain", "Records"}, slices.Collect(maps.Keys(raw)))
	var axfr AXFR
	apiGet(t, srv, "/v1/axfr", &axfr)
	z := m.Store().Load()
	require.Equal(t, AXFR{TTL: 60, Serial: z.Serial(), RefreshSeconds: 30, Mname: "ns1.mesos.", Rname: "root.ns1.mesos.", Domain: "mesos",
		Records: axfr.Records}, axfr)
	var lines []string
	for name, hosts := range axfr.Records.As {
		for _, h := range hosts {
			lines = append(lines, name+" A "+h)
		}
	}
	for name, hosts := range axfr.Records.AAAAs {
		for _, h := range hosts {
			lines = append(lines, name+" AAAA "+h)
		}
	}
	for name, hosts := range axfr.Records.SRVs {
		for _, h := range hosts {
			lines = append(lines, name+" SRV "+h)
		}
	}
	require.ElementsMatch(t, recordLines(z), lines)
	require.Equal(t, []string{"1.2.3.4"}, axfr.Records.As["leader.mesos."])

	var objs []map[string]string
	apiGet(t, srv, "/v1/records", &objs)
	var recs []NavstarRecord
	apiGet(t, srv, "/v1/records", &recs)
	require.Len(t, objs, len(recs))
	for _, o := range objs {
		require.ElementsMatch(t, []string{"name", "host", "rtype"}, slices.Collect(maps.Keys(o)))
	}
	require.Contains(t, recs, NavstarRecord{Name: "leader.dcos.thisdcos.directory", Host: "1.2.3.4", Rtype: "A"})
	require.Contains(t, recs, NavstarRecord{Name: "liquor-store.marathon.agentip.dcos.thisdcos.directory", Host: "1.2.3.12", Rtype: "A"})
	require.Contains(t, recs, NavstarRecord{Name: "leader.mesos.thisdcos.directory", Host: "1.2.3.4", Rtype: "A"})
	require.Contains(t, recs, NavstarRecord{Name: "_leader._tcp.mesos.thisdcos.directory", Host: "leader.mesos.thisdcos.directory:5050", Rtype: "SRV"})
	nav := 0
	for _, rr := range m.NavstarStore().Load().Records() {
		if _, _, _, ok := recordHost(rr); ok {
			nav++
		}
	}
	require.Len(t, recs, nav+len(recordLines(z)))
	for _, r := range recs {
		require.True(t, strings.HasSuffix(r.Name, ".thisdcos.directory"), r.Name)
	}

	// Mesos-DNS never implemented it, and says so.
	resp, err := srv.Client().Get(srv.URL + "/v1/hosts/leader.mesos/ports")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotImplemented, resp.StatusCode)
}
