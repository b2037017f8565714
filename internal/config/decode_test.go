package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDecodeMatchesNamesExactly checks that field names match their JSON
// tags case and all, that an unknown field anywhere is named by its path,
// and that only master mode's object, whose names come from Mesos-DNS,
// matches them in any case.
func TestDecodeMatchesNamesExactly(t *testing.T) {
	const ups = `"upstreams": ["192.0.2.1"]`
	for _, tc := range []struct {
		name, json, err string
	}{
		{"upper-case top-level field", `{"LISTEN": ["127.0.0.1:5353"], ` + ups + `}`, "field LISTEN: unknown field"},
		{"mixed-case top-level field", `{"UpStreams": ["192.0.2.1"]}`, "field UpStreams: unknown field"},
		{"capitalized object field", `{"Cache": {"maxEntries": 10}, ` + ups + `}`, "field Cache: unknown field"},
		{"upper-case field inside cache", `{"cache": {"MAXENTRIES": 10}, ` + ups + `}`, "field cache.MAXENTRIES: unknown field"},
		{"unknown field inside cache", `{"cache": {"maxEntry": 10}, ` + ups + `}`, "field cache.maxEntry: unknown field"},
		{"wrong case inside log", `{"log": {"Level": "debug"}, ` + ups + `}`, "field log.Level: unknown field"},
		{"unknown field inside master", `{"master": {"mastrs": []}, ` + ups + `}`, "field master.mastrs: unknown field"},
		{"master names match in any case, delimiters exactly", `{"master": {"SOA_Mname": "ns.mesos."}, ` + ups + `}`, "field master.SOA_Mname: unknown field"},
		{"null object", `{"cache": null, ` + ups + `}`, "field cache: null is not a value here"},
		{"null string", `{"metrics": null, ` + ups + `}`, "field metrics: null is not a value here"},
		{"null number inside an object", `{"cache": {"maxEntries": null}, ` + ups + `}`, "field cache.maxEntries: null is not a value here"},
		{"null in a list", `{"listen": [null], ` + ups + `}`, "field listen[0]: null is not a value here"},
		{"null duration", `{"raceTimeout": null, ` + ups + `}`, "field raceTimeout: not a duration: null"},
		{"wrong type in a zone group", `{"zones": {"mesos.": ["192.0.2.4", 53]}, ` + ups + `}`, `field zones["mesos."][1]: expected string, got JSON number`},
		{"wrong type in master", `{"master": {"TTL": "60"}, ` + ups + `}`, "field master.TTL: expected int, got JSON string"},
		{"fraction for an integer", `{"maxInFlight": 1.5, ` + ups + `}`, "field maxInFlight: expected int, got JSON number 1.5"},
		{"bad duration in master's sibling", `{"cache": {"staleTTL": "later"}, ` + ups + `}`, `field cache.staleTTL: not a duration: "later" (want e.g. "2s", "500ms" or a number of seconds)`},
		{"not an object", `["127.0.0.1:53"]`, "invalid JSON: the configuration must be an object, got JSON array"},
		{"empty input", ``, "invalid JSON"},
		{"trailing garbage", `{"listen": ["127.0.0.1:53"], ` + ups + `} x`, "trailing data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.err)
		})
	}
}

// TestDecodeNullListIsEmpty: a null list, map or master object means what
// it meant with encoding/json: empty, or absent.
func TestDecodeNullListIsEmpty(t *testing.T) {
	cfg, err := Parse([]byte(`{"upstreams": null, "upstreamsFile": "/etc/resolv.conf", "zones": null, "masters": null, "master": null}`))
	require.NoError(t, err)
	require.Empty(t, cfg.Upstreams)
	require.Empty(t, cfg.Zones)
	require.Empty(t, cfg.Masters)
	require.Nil(t, cfg.Master)
}

// TestDecodeFieldGivenTwice: the last value wins, as with encoding/json
// (files are extended by appending overrides), whatever the case of a
// master field.
func TestDecodeFieldGivenTwice(t *testing.T) {
	cfg, err := Parse([]byte(`{"upstreams": ["192.0.2.1"], "upstreams": ["192.0.2.2"],
 "master": {"ttl": 5, "TTL": 6, "http": "", "http": "127.0.0.1:8124"}}`))
	require.NoError(t, err)
	require.Equal(t, []string{"192.0.2.2:53"}, cfg.Upstreams)
	require.Equal(t, 6, cfg.Master.TTL)
	require.Equal(t, "127.0.0.1:8124", cfg.Master.HTTP)
}

// TestDecodeMasterNamesInAnyCase decodes master settings as Mesos-DNS's
// config.json spells them and in other cases: all are accepted.
func TestDecodeMasterNamesInAnyCase(t *testing.T) {
	for _, tc := range []struct {
		name, master string
	}{
		{"as documented", `"IPSources": ["host", "mesos"], "EnforceRFC952": true, "SOAMname": "ns.mesos.", "SOARefresh": 7, "refreshSeconds": 5, "ttl": 9`},
		{"lower case", `"ipsources": ["host", "mesos"], "enforcerfc952": true, "soamname": "ns.mesos.", "soarefresh": 7, "refreshseconds": 5, "ttl": 9`},
		{"Mesos-DNS config.json", `"IPSources": ["host", "mesos"], "EnforceRFC952": true, "SOAMname": "ns.mesos.", "SOARefresh": 7, "RefreshSeconds": 5, "TTL": 9`},
		{"upper case", `"IPSOURCES": ["host", "mesos"], "ENFORCERFC952": true, "SOAMNAME": "ns.mesos.", "SOAREFRESH": 7, "REFRESHSECONDS": 5, "TTL": 9`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(`{"upstreams": ["192.0.2.1"], "master": {` + tc.master + `}}`))
			require.NoError(t, err)
			m := cfg.Master
			require.NotNil(t, m)
			require.Equal(t, []string{"host", "mesos"}, m.IPSources)
			require.True(t, m.EnforceRFC952)
			require.Equal(t, "ns.mesos.", m.SOAMname)
			require.Equal(t, "root.ns.mesos.", m.SOARname, "derived from SOAMname")
			require.Equal(t, uint32(7), m.SOARefresh)
			require.Equal(t, uint32(600), m.SOARetry, "default kept")
			require.Equal(t, 5, m.RefreshSeconds)
			require.Equal(t, 9, m.TTL)
			require.Equal(t, []string{"0.0.0.0:61053"}, m.Listen, "default kept")
		})
	}
}

// TestDecodeStrictAnyStruct checks that DecodeStrict needs nothing from a
// type but ordinary `json:"name"` tags: a field added to a configuration
// struct is decoded, matched exactly and named in errors by its path.
func TestDecodeStrictAnyStruct(t *testing.T) {
	type limits struct {
		Burst int               `json:"burst"`
		Nets  map[string][]int  `json:"nets"`
		Slow  Duration          `json:"slow"`
		Names map[string]string `json:"names,omitempty"`
	}
	type file struct {
		Name   string  `json:"name"`
		Limits limits  `json:"limits"`
		Opt    *limits `json:"opt"`
	}
	def := func() file { return file{Name: "default", Limits: limits{Burst: 5, Slow: Duration(1e9)}} }

	got := def()
	require.NoError(t, DecodeStrict([]byte(`{"limits": {"nets": {"a": [1, 2]}}, "opt": {"burst": 3}}`), &got))
	require.Equal(t, "default", got.Name, "default kept")
	require.Equal(t, 5, got.Limits.Burst, "default kept in a nested object")
	require.Equal(t, map[string][]int{"a": {1, 2}}, got.Limits.Nets)
	require.Equal(t, 3, got.Opt.Burst)

	for _, tc := range []struct{ json, err string }{
		{`{"Name": "x"}`, "field Name: unknown field"},
		{`{"limits": {"Burst": 1}}`, "field limits.Burst: unknown field"},
		{`{"opt": {"brust": 1}}`, "field opt.brust: unknown field"},
		{`{"limits": {"nets": {"a.b": [1, "2"]}}}`, `field limits.nets["a.b"][1]: expected int, got JSON string`},
		{`{"limits": {"slow": "-"}}`, `field limits.slow: not a duration: "-"`},
		{`{"limits": {"names": {"x/y~z": 1}}}`, `field limits.names["x/y~z"]: expected string, got JSON number`},
	} {
		t.Run(tc.json, func(t *testing.T) {
			v := def()
			err := DecodeStrict([]byte(tc.json), &v)
			require.Error(t, err)
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			require.Contains(t, err.Error(), tc.err)
		})
	}
}
