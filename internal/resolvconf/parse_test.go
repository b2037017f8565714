package resolvconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const corpusDir = "../../testdata/resolvconf"

func readCorpus(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir, name))
	require.NoError(t, err)
	return data
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestParseCorpus(t *testing.T) {
	tests := []struct {
		file        string
		nameservers []netip.Addr
		search      []string
		options     []string
		kinds       map[Kind]int
		warnings    []string // substrings, in order
	}{
		{
			file:        "debian-dhcp.conf",
			nameservers: addrs("192.0.2.10", "192.0.2.11"),
			search:      []string{"corp.example.com"},
			kinds:       map[Kind]int{Domain: 1, Search: 1, Nameserver: 2},
			warnings:    []string{"line 2: both search and domain"},
		},
		{
			file:        "ubuntu-resolved-stub.conf",
			nameservers: addrs("127.0.0.53"),
			search:      []string{"."},
			options:     []string{"edns0", "trust-ad"},
			kinds:       map[Kind]int{Comment: 19, Blank: 1, Nameserver: 1, Options: 1, Search: 1},
		},
		{
			file:        "ubuntu-resolved-uplink.conf",
			nameservers: addrs("192.0.2.1", "2001:db8::1"),
			search:      []string{"lan"},
			kinds:       map[Kind]int{Comment: 15, Blank: 1, Nameserver: 2, Search: 1},
		},
		{
			file:        "kubernetes-pod.conf",
			nameservers: addrs("10.96.0.10"),
			search:      []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local", "ec2.internal"},
			options:     []string{"ndots:5"},
			kinds:       map[Kind]int{Search: 1, Nameserver: 1, Options: 1},
		},
		{
			file:        "dcos-generated.conf",
			nameservers: addrs("198.51.100.1", "198.51.100.2", "198.51.100.3"),
			options:     []string{"timeout:1", "attempts:3"},
			kinds:       map[Kind]int{Comment: 4, Blank: 2, Options: 2, Nameserver: 3},
		},
		{
			file:        "networkmanager-ipv6-zone.conf",
			nameservers: addrs("192.168.1.1", "fe80::1%wlp2s0", "2001:db8:1::53"),
			search:      []string{"home.arpa"},
			kinds:       map[Kind]int{Comment: 1, Search: 1, Nameserver: 3},
		},
		{
			file:        "docker-embedded.conf",
			nameservers: addrs("127.0.0.11"),
			search:      []string{"example.com"},
			options:     []string{"edns0", "trust-ad", "ndots:0"},
			kinds:       map[Kind]int{Comment: 7, Blank: 2, Nameserver: 1, Search: 1, Options: 1},
		},
		{
			file:        "too-many-nameservers.conf",
			nameservers: addrs("192.0.2.1", "192.0.2.2", "192.0.2.3", "198.51.100.4", "203.0.113.5"),
			search:      []string{"example.net"},
			options:     []string{"rotate", "timeout:2", "attempts:2"},
			kinds:       map[Kind]int{Comment: 1, Nameserver: 5, Search: 1, Options: 1},
			warnings:    []string{"line 5: more than 3 nameservers"},
		},
		{
			file:  "empty.conf",
			kinds: map[Kind]int{},
		},
		{
			file:  "comments-only.conf",
			kinds: map[Kind]int{Comment: 3, Blank: 1},
		},
		{
			file:        "odd-spacing.conf",
			nameservers: addrs("192.0.2.53", "198.51.100.53"),
			search:      []string{"lab.example", "example.org"},
			options:     []string{"ndots:2", "timeout:3", "attempts:4", "rotate", "edns0", "single-request-reopen", "no-tld-query", "single-request", "use-vc"},
			kinds:       map[Kind]int{Comment: 2, Nameserver: 2, Unknown: 2, Blank: 2, Domain: 1, Search: 1, Options: 3, Sortlist: 1},
			warnings: []string{
				"line 5: indented directive",
				"line 10: trailing comment",
				`line 12: unknown directive "lookup"`,
				"line 8: both search and domain",
			},
		},
		{
			file:     "crlf.conf",
			search:   []string{"example.com\r"},
			kinds:    map[Kind]int{Nameserver: 1, Search: 1},
			warnings: []string{`line 1: nameserver "192.0.2.1\r" is not an IP address`},
		},
		{
			file:        "malformed.conf",
			nameservers: addrs("192.0.2.7", "192.0.2.8"),
			options:     []string{"ndots:", "timeout:99", "frobnicate"},
			kinds:       map[Kind]int{Nameserver: 5, Options: 1, Unknown: 3},
			warnings: []string{
				"line 1: nameserver without a value",
				`line 2: nameserver "not-an-address" is not an IP address`,
				`line 3: nameserver "192.0.2.300"`,
				`line 4: nameserver "2001:db8::zz"`,
				`line 6: option "ndots:" needs a non-negative number`,
				`line 6: option "timeout:99": glibc caps timeout at 30`,
				`line 6: unknown option "frobnicate"`,
				`line 7: unknown directive "searchexample.com"`,
				"line 8: domain without a value",
			},
		},
	}
	entries, err := os.ReadDir(corpusDir)
	require.NoError(t, err)
	require.Len(t, tests, len(entries), "every corpus file has a test case")
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data := readCorpus(t, tc.file)
			f := Parse(data)
			require.Equal(t, string(data), string(f.Bytes()), "round trip must be byte for byte")
			require.Equal(t, tc.nameservers, f.Nameservers())
			require.Equal(t, tc.search, f.Search())
			var opts []string
			for _, o := range f.Options() {
				opts = append(opts, o.String())
			}
			require.Equal(t, tc.options, opts)
			kinds := map[Kind]int{}
			for _, l := range f.Lines {
				kinds[l.Kind]++
			}
			require.Equal(t, tc.kinds, kinds)
			warnings := f.Warnings()
			require.Len(t, warnings, len(tc.warnings), "warnings: %q", warnings)
			for i, w := range tc.warnings {
				require.Contains(t, warnings[i], w)
			}
			// Rebuilding the file line by line gives the same bytes too.
			g := &File{NoFinalNewline: f.NoFinalNewline}
			for _, l := range f.Lines {
				g.AddLine(l)
			}
			require.Equal(t, string(data), string(g.Bytes()))
		})
	}
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		text string
		kind Kind
		args []string
		addr string
	}{
		{"nameserver 192.0.2.1", Nameserver, []string{"192.0.2.1"}, "192.0.2.1"},
		{"nameserver\t\t2001:db8::53", Nameserver, []string{"2001:db8::53"}, "2001:db8::53"},
		{"nameserver fe80::1%eth0 # link-local", Nameserver, []string{"fe80::1%eth0"}, "fe80::1%eth0"},
		{"nameserver ::ffff:192.0.2.1", Nameserver, []string{"::ffff:192.0.2.1"}, "::ffff:192.0.2.1"},
		{"nameserver", Unknown, nil, ""},
		{"nameserver ", Nameserver, nil, ""},
		{"nameservers 192.0.2.1", Unknown, nil, ""},
		{"Nameserver 192.0.2.1", Unknown, nil, ""},
		{"search a.example b.example ; c", Search, []string{"a.example", "b.example"}, ""},
		{"options ndots:1", Options, []string{"ndots:1"}, ""},
		{"#nameserver 192.0.2.1", Comment, nil, ""},
		{"; comment", Comment, nil, ""},
		{" # indented comment", Unknown, nil, ""},
		{"  \t ", Blank, nil, ""},
		{"\r", Blank, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			l := parseLine(tc.text)
			require.Equal(t, tc.kind, l.Kind)
			require.Equal(t, tc.args, l.Args)
			if tc.addr == "" {
				require.False(t, l.Addr.IsValid())
			} else {
				require.Equal(t, tc.addr, l.Addr.String())
			}
		})
	}
}

func TestOption(t *testing.T) {
	f := Parse([]byte("options ndots:1 timeout:2\noptions ndots:4 rotate\n"))
	o, ok := f.Option("ndots")
	require.True(t, ok)
	require.Equal(t, Option{Name: "ndots", Value: "4", HasValue: true}, o)
	o, ok = f.Option("rotate")
	require.True(t, ok)
	require.Equal(t, "rotate", o.String())
	_, ok = f.Option("attempts")
	require.False(t, ok)
}

func TestBuild(t *testing.T) {
	f := &File{}
	f.AddComment("managed")
	f.AddComment("# already prefixed")
	f.AddNameserver(netip.MustParseAddr("192.0.2.53"))
	f.AddNameserver(netip.MustParseAddr("fe80::53%eth0"))
	f.AddOptions()
	f.AddOptions(ParseOption("timeout:1"), ParseOption("rotate"))
	want := "# managed\n# already prefixed\nnameserver 192.0.2.53\nnameserver fe80::53%eth0\noptions timeout:1 rotate\n"
	require.Equal(t, want, string(f.Bytes()))
	// What is built parses back to the same meaning.
	g := Parse(f.Bytes())
	require.Equal(t, f.Nameservers(), g.Nameservers())
	require.Equal(t, f.Options(), g.Options())
	require.Empty(t, g.Warnings())
}

func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir(corpusDir)
	require.NoError(f, err)
	for _, e := range entries {
		f.Add(readCorpus(f, e.Name()))
	}
	f.Add([]byte("\n\n\x00\xff nameserver\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := Parse(data)
		if got := p.Bytes(); string(got) != string(data) {
			t.Fatalf("round trip lost bytes: %q -> %q", data, got)
		}
		_ = p.Warnings()
		_ = p.Search()
		// parse(render(parse(x))) is parse(x), line for line.
		require.Equal(t, p, Parse(p.Bytes()), "parsed, rendered and parsed again")
		// What Parse understood renders to something meaning the same.
		g := &File{}
		for _, a := range p.Nameservers() {
			g.AddNameserver(a)
		}
		g.AddOptions(p.Options()...)
		back := Parse(g.Bytes())
		require.Equal(t, p.Nameservers(), back.Nameservers(), "nameservers rendered and parsed back")
		require.Equal(t, p.Options(), back.Options(), "options rendered and parsed back")
	})
}
