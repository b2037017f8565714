package proxy

import (
	"sync/atomic"

	"github.com/spartan-dns/spartan/internal/upstream"
)

// tableRef counts the users of one upstream table: one reference while it
// routes new queries, one per race running on it. The last release closes
// the table.
type tableRef struct {
	t      *upstream.Table
	refs   atomic.Int64
	closed chan struct{} // closed once t is closed
}

// newRef registers t as a live table holding its "current" reference.
// The caller holds tmu or has not shared f yet.
func (f *Forwarder) newRef(t *upstream.Table) *tableRef {
	r := &tableRef{t: t, closed: make(chan struct{})}
	r.refs.Store(1)
	f.tables[r] = struct{}{}
	return r
}

// acquire returns the current table with a reference for one race, or nil
// after Close. A table whose references have all gone is never handed
// out again: the loop then finds its successor, which SwapTable stored
// before releasing it.
func (f *Forwarder) acquire() *tableRef {
	for {
		r := f.table.Load()
		n := r.refs.Load()
		if n == 0 {
			if f.table.Load() == r {
				return nil // closed
			}
			continue
		}
		if r.refs.CompareAndSwap(n, n+1) {
			return r
		}
	}
}

// release drops a reference; the last one closes the table on a goroutine
// of its own (it waits for the losing legs of the table's last races to
// wind down, which no client should wait for). Close waits for it.
func (f *Forwarder) release(r *tableRef) {
	if r.refs.Add(-1) != 0 {
		return
	}
	go func() {
		r.t.Close()
		f.tmu.Lock()
		delete(f.tables, r)
		f.tmu.Unlock()
		close(r.closed)
	}()
}
