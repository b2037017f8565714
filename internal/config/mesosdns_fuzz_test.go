package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// FuzzMapMesosDNS feeds the Mesos-DNS config.json reader arbitrary files,
// starting from Mesos-DNS's documented and shipped ones. It must never
// panic, and an accepted file must map to a spartan configuration that is
// valid, and that -print-config's output reads back into unchanged.
func FuzzMapMesosDNS(f *testing.F) {
	for _, name := range []string{"configuration-parameters.json", "config.json.sample.json", "reference.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "mesos-dns", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		`{"masters": ["192.0.2.10:5050"], "dnson": false, "externalon": false}`,
		`{"zk": "zk://u:p@192.0.2.1:2181/mesos", "email": "a@b", "resolvers": ["[2001:db8::1]:5353"], "zoneResolvers": {"x": ["192.0.2.1"]}}`,
		`{"masters": ["192.0.2.10:5050"], "mesosAuthentication": "basic", "mesosCredentials": {"principal": "p", "secret": "s"}, "timeout": 0}`,
	} {
		f.Add([]byte(s))
	}
	opts := MesosDNSOptions{ResolvConf: "/nonexistent", LocalAddrs: []netip.Addr{}}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := MapMesosDNS(data, opts)
		if err != nil {
			return
		}
		cfg := res.Config
		if err := cfg.Validate(); err != nil {
			t.Fatalf("mapped configuration fails to validate again: %v\n%s", err, data)
		}
		out, err := Marshal(cfg)
		if err != nil {
			t.Fatalf("mapped configuration cannot be printed: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("printed configuration is refused: %v\n%s", err, out)
		}
		out2, err := Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(out2) {
			t.Fatalf("printed configuration reads back differently:\n%s\n%s", out, out2)
		}
	})
}
