package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/go-json-experiment/json"
)

// FuzzParse feeds the configuration decoder arbitrary files, starting from
// the shipped samples and the README's examples. It must never panic; an
// accepted configuration must validate again unchanged, and must survive
// being written out and parsed back (what is accepted is what is meant).
func FuzzParse(f *testing.F) {
	for _, name := range []string{"spartan.json", "spartan-master.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "systemd", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		// README: the smallest useful file, the DC/OS listen set, master mode.
		`{"listen": ["127.0.0.1:5353"],
 "upstreams": ["127.0.0.2:5301", "127.0.0.3:5302"],
 "zones": {"mesos.": ["127.0.0.4:61053"]}}`,
		`{"listen": ["198.51.100.1:53", "198.51.100.2:53", "198.51.100.3:53"], "upstreams": ["192.0.2.1"]}`,
		`{"listen": ["169.254.20.10:53"], "masters": ["192.0.2.11", "192.0.2.12", "192.0.2.13"],
 "master": {"listen": ["0.0.0.0:61053"], "masters": ["127.0.0.1:5050"], "domain": "mesos.",
            "refreshSeconds": 30, "http": "127.0.0.1:8123"}}`,
		`{"upstreams": ["192.0.2.1", "2001:db8::1"], "raceTimeout": 0.5, "cache": {"servFailTTL": "250ms", "maxEntries": 10},
 "master": {"IPSources": ["host"], "enforcerfc952": true, "SOAMname": "ns.mesos", "TTL": 5}}`,
		`{"cache": {"disabled": true}, "log": {"level": "debug", "format": "json"}, "upstreamsFile": "/etc/resolv.conf"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted configuration fails to validate again: %v\n%s", err, data)
		}
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("accepted configuration cannot be written: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("accepted configuration written out is refused: %v\n%s", err, out)
		}
		out2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(out2) {
			t.Fatalf("parse(write(cfg)) differs from cfg:\n%s\n%s", out, out2)
		}
	})
}
