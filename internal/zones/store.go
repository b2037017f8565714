package zones

import "sync/atomic"

// Store holds the current version of a zone and swaps it atomically:
// readers see either the old or the new zone, never a half-built one.
type Store struct {
	p       atomic.Pointer[Zone]
	version atomic.Uint64
}

// NewStore returns a store holding z.
func NewStore(z *Zone) *Store {
	s := &Store{}
	s.p.Store(z)
	return s
}

// Load returns the current zone; nil until one is stored.
func (s *Store) Load() *Zone { return s.p.Load() }

// Swap stores z and returns the zone it replaces.
func (s *Store) Swap(z *Zone) *Zone {
	old := s.p.Swap(z)
	s.version.Add(1)
	return old
}

// Version counts the swaps so far. It is bumped after the new zone is in
// place, so a reply built from the zone loaded after reading Version is
// never older than that version.
func (s *Store) Version() uint64 { return s.version.Load() }
