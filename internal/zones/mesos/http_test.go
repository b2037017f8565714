package mesos

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

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
	m := newMaster(t, masterConfig(t, []string{"144.76.157.37:5050"}, ""))
	m.UseState(DemoState)
	require.NoError(t, m.Poll(t.Context()))
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)

	var version map[string]string
	apiGet(t, srv, "/v1/version", &version)
	require.Equal(t, "spartan", version["Service"])
	require.Contains(t, version, "URL")
	require.Contains(t, version, "Version")

	var cfg map[string]any
	apiGet(t, srv, "/v1/config", &cfg)
	require.Equal(t, "mesos.", cfg["domain"])
	require.Equal(t, []any{"144.76.157.37:5050"}, cfg["masters"])

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
