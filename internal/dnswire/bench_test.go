package dnswire

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/spartan-dns/spartan/internal/testsupport"
)

func BenchmarkParseQuery(b *testing.B) {
	query := testsupport.PackQuery(b, "some-service.marathon.mesos.", dns.TypeSRV, testsupport.WithEDNS(1232, true))
	var q Query
	b.ReportAllocs()
	for range b.N {
		if err := q.Parse(query); err != nil {
			b.Fatal(err)
		}
	}
}
