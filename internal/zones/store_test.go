package zones

import (
	"fmt"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// TestStoreSwapUnderReaders checks that readers racing a swap always see a
// whole zone: every lookup finds the full record set of one version.
func TestStoreSwapUnderReaders(t *testing.T) {
	build := func(version int) *Zone {
		b := NewBuilder("mesos.", testSOA, nil)
		for i := range 50 {
			b.Add(rr(t, fmt.Sprintf("t%d.mesos. 60 IN A 192.0.2.%d", i, version)))
		}
		return b.Build(uint32(version))
	}
	s := NewStore(build(1))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				z := s.Load()
				want := fmt.Sprintf("192.0.2.%d", z.Serial())
				for i := range 50 {
					res := z.Lookup(fmt.Sprintf("t%d.mesos.", i), dns.TypeA)
					if len(res.Answer) != 1 || res.Answer[0].(*dns.A).A.String() != want {
						t.Errorf("zone %d: t%d answered %v", z.Serial(), i, res.Answer)
						return
					}
				}
			}
		}()
	}
	for v := 2; v < 200; v++ {
		s.Swap(build(v))
	}
	close(stop)
	wg.Wait()
}
