package server

import (
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr: a msghdr and the length the kernel received
// or sent. Go pads the struct to the alignment of Msghdr, as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// mmsgBatch is a set of datagram slots for recvmmsg or sendmmsg: each slot
// has its message header, one buffer and room for an IPv4 or IPv6 socket
// address. It lives on the heap for the listener's lifetime, so the
// pointers the kernel is given stay valid.
type mmsgBatch struct {
	hs    []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  [][]byte
	// ctrl holds each slot's control messages (packet info) on a
	// wildcard socket; nil otherwise.
	ctrl [][]byte
}

// ctrlSize is room for one IPv4 or IPv6 packet-info control message, the
// only one a listener asks for, with slack for another the kernel adds.
var ctrlSize = 2 * unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// newMmsgBatch makes n slots, with buffers of size bytes when size is
// positive and room for packet info when pktinfo is set.
func newMmsgBatch(n, size int, pktinfo bool) *mmsgBatch {
	b := &mmsgBatch{
		hs:    make([]mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		bufs:  make([][]byte, n),
	}
	for i := range n {
		if size > 0 {
			b.bufs[i] = make([]byte, size)
		}
		b.hs[i].hdr.Iov = &b.iovs[i]
		b.hs[i].hdr.SetIovlen(1)
		b.hs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	if pktinfo {
		b.ctrl = make([][]byte, n)
		for i := range n {
			b.ctrl[i] = make([]byte, ctrlSize)
			b.hs[i].hdr.Control = &b.ctrl[i][0]
		}
	}
	return b
}

// recv reads up to len(b.hs) waiting datagrams from the non-blocking
// socket fd into the slots' buffers.
//
// It is a raw system call (no entersyscall): recvmmsg on a non-blocking
// socket returns at once, so holding the processor through it is what the
// runtime does for its own non-blocking calls. Entering the scheduler's
// syscall state instead wakes the runtime's monitor thread whenever the
// process was idle, which at a few thousand queries a second meant two
// extra thread wake-ups per query.
func (b *mmsgBatch) recv(fd uintptr) (int, syscall.Errno) {
	for i := range b.hs {
		h := &b.hs[i]
		h.hdr.Namelen = uint32(unsafe.Sizeof(b.names[i]))
		h.hdr.Flags = 0
		h.n = 0
		if b.ctrl != nil {
			h.hdr.SetControllen(len(b.ctrl[i]))
		}
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(len(b.bufs[i]))
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hs[0])), uintptr(len(b.hs)), 0, 0, 0)
	return int(n), errno
}

// msg returns the i-th datagram received.
func (b *mmsgBatch) msg(i int) []byte { return b.bufs[i][:b.hs[i].n] }

// from returns the sender of the i-th datagram, invalid for an address
// family other than IPv4 and IPv6. An IPv6 scope (a link-local sender)
// becomes the address's zone, its interface index in decimal, as the net
// package reports it when it cannot name the interface.
func (b *mmsgBatch) from(i int) netip.AddrPort {
	sa := &b.names[i]
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port(sa4.Port))
	case unix.AF_INET6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, port(sa.Port))
	}
	return netip.AddrPort{}
}

// setAddr fills send slot i with reply to dst, sent from src when valid:
// set for a reply whose datagram is no longer in a receive batch (one a
// worker answered). An IPv4 address goes out as AF_INET on an IPv4 socket
// and as a mapped IPv6 address on an IPv6 one.
func (b *mmsgBatch) setAddr(i int, reply []byte, dst netip.AddrPort, v6 bool, src netip.Addr) {
	b.bufs[i] = reply
	sa := &b.names[i]
	*sa = unix.RawSockaddrInet6{}
	h := &b.hs[i].hdr
	if !v6 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Port = port(dst.Port())
		sa4.Addr = dst.Addr().Unmap().As4()
		h.Namelen = unix.SizeofSockaddrInet4
	} else {
		sa.Family = unix.AF_INET6
		sa.Port = port(dst.Port())
		sa.Addr = dst.Addr().As16()
		sa.Scope_id = scopeID(dst.Addr().Zone())
		h.Namelen = unix.SizeofSockaddrInet6
	}
	b.setSrc(i, src)
}

// scopeID is the interface index of an IPv6 zone: a decimal index, or an
// interface name; 0 when there is none.
func scopeID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// port converts a port between host order and a sockaddr's network byte
// order (the swap is its own inverse).
func port(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// dst returns the destination address of the i-th datagram from its
// packet info, invalid when absent.
func (b *mmsgBatch) dst(i int) netip.Addr {
	if b.ctrl == nil {
		return netip.Addr{}
	}
	c := b.ctrl[i][:min(int(b.hs[i].hdr.Controllen), len(b.ctrl[i]))]
	for len(c) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		if h.Len < unix.SizeofCmsghdr || uint64(h.Len) > uint64(len(c)) {
			break
		}
		data := c[unix.CmsgLen(0):h.Len]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			return netip.AddrFrom4((*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0])).Addr)
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			return netip.AddrFrom16((*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0])).Addr)
		}
		next := unix.CmsgSpace(int(h.Len) - unix.CmsgLen(0))
		if next > len(c) {
			break
		}
		c = c[next:]
	}
	return netip.Addr{}
}

// set fills send slot i with reply to the sender of slot j of in, sent
// from src when valid (a wildcard socket's reply leaves from the address
// queried).
func (b *mmsgBatch) set(i int, reply []byte, in *mmsgBatch, j int, src netip.Addr) {
	b.bufs[i] = reply
	b.names[i] = in.names[j]
	b.hs[i].hdr.Namelen = in.hs[j].hdr.Namelen
	b.setSrc(i, src)
}

// setSrc sets the source address of send slot i's datagram (a packet-info
// control message), on a batch that has room for one.
func (b *mmsgBatch) setSrc(i int, src netip.Addr) {
	h := &b.hs[i].hdr
	if b.ctrl == nil {
		return
	}
	h.SetControllen(0)
	h.Control = nil
	if !src.IsValid() {
		return
	}
	c := b.ctrl[i]
	ch := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
	if b.names[i].Family == unix.AF_INET6 {
		ch.Level, ch.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		ch.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
		*(*unix.Inet6Pktinfo)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = unix.Inet6Pktinfo{Addr: src.As16()}
		h.SetControllen(unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	} else {
		ch.Level, ch.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		ch.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		*(*unix.Inet4Pktinfo)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = unix.Inet4Pktinfo{Spec_dst: src.Unmap().As4()}
		h.SetControllen(unix.CmsgSpace(unix.SizeofInet4Pktinfo))
	}
	h.Control = &c[0]
}

// send writes slots [from, to) with one sendmmsg on the non-blocking
// socket fd, raw for the reason recv is.
func (b *mmsgBatch) send(fd uintptr, from, to int) (int, syscall.Errno) {
	for i := from; i < to; i++ {
		if len(b.bufs[i]) == 0 {
			b.iovs[i].Base = nil
		} else {
			b.iovs[i].Base = &b.bufs[i][0]
		}
		b.iovs[i].SetLen(len(b.bufs[i]))
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hs[from])), uintptr(to-from), 0, 0, 0)
	return int(n), errno
}

// addr returns the destination of send slot i.
func (b *mmsgBatch) addr(i int) netip.AddrPort { return b.from(i) }
