package upstream

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// poller waits for the UDP sockets of a group's legs with an epoll
// instance of its own, itself registered with the Go runtime's network
// poller. A leg socket costs one epoll_ctl to add and nothing to remove
// (closing the socket removes it), where an *os.File or net.Conn per leg
// costs an fcntl and two epoll_ctl calls plus a finalizer; on the
// cache-miss path, where every query opens a fresh socket, that is a fifth
// of the system calls.
//
// One goroutine (run) drains the epoll instance whenever the runtime
// reports it readable and wakes the legs whose sockets are ready. Wake-ups
// are hints: a leg always reads until EAGAIN, so a stale wake-up (a socket
// number reused after close) costs one read.
type poller struct {
	file *os.File // the epoll descriptor, owned by the runtime's poller
	epfd int
	mu   sync.Mutex
	wait map[int32]chan struct{}
	done chan struct{}
}

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", os.NewSyscallError("epoll_create1", err))
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("upstream: %w", os.NewSyscallError("fcntl", err))
	}
	p := &poller{file: os.NewFile(uintptr(epfd), "upstream-epoll"), epfd: epfd,
		wait: make(map[int32]chan struct{}), done: make(chan struct{})}
	rc, err := p.file.SyscallConn()
	if err != nil {
		p.file.Close()
		return nil, fmt.Errorf("upstream: epoll descriptor: %w", err)
	}
	go p.run(rc)
	return p, nil
}

func (p *poller) run(rc syscall.RawConn) {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	// The callback drains every ready event and returns false, which
	// parks the goroutine until the epoll descriptor is readable again;
	// Read returns only when the descriptor is closed.
	_ = rc.Read(func(fd uintptr) bool {
		for {
			// A raw call, like the legs' socket calls: it never blocks
			// (zero timeout), and through syscall.EpollWait its
			// entersyscall would wake the runtime's monitor thread after
			// every idle moment, one more thread wake-up per cache miss
			// at the rates a node sees.
			n, err := rawEpollPoll(int(fd), events)
			if err == syscall.EINTR {
				continue
			}
			if n <= 0 {
				return false
			}
			p.mu.Lock()
			for _, ev := range events[:n] {
				if ch := p.wait[ev.Fd]; ch != nil {
					select {
					case ch <- struct{}{}:
					default: // already signalled
					}
				}
			}
			p.mu.Unlock()
			if n < len(events) {
				// Drained: a socket that becomes ready from now on
				// makes the epoll descriptor readable again, so parking
				// without one more (empty) epoll_wait is safe.
				return false
			}
		}
	})
}

// epollET is EPOLLET as the uint32 the event mask is (package syscall
// declares it as a negative int).
const epollET = 1 << 31

// chans recycles the legs' wake-up channels.
var chans = sync.Pool{New: func() any { return make(chan struct{}, 1) }}

// add registers a leg's socket and returns the channel signalled when it
// may be readable (or has an error, such as ICMP port unreachable).
func (p *poller) add(fd int) (chan struct{}, error) {
	ch := chans.Get().(chan struct{})
	p.mu.Lock()
	p.wait[int32(fd)] = ch
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollET, Fd: int32(fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.remove(fd, ch)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return ch, nil
}

// remove forgets a socket; the caller closes it, which takes it out of the
// epoll set.
func (p *poller) remove(fd int, ch chan struct{}) {
	p.mu.Lock()
	if p.wait[int32(fd)] == ch {
		delete(p.wait, int32(fd))
	}
	p.mu.Unlock()
	select {
	case <-ch:
	default:
	}
	chans.Put(ch)
}

// close stops the poller's goroutine. Legs must be finished.
func (p *poller) close() {
	p.file.Close()
	<-p.done
}

// shared is the one poller of the process, shared by every group and
// reference-counted: the first group starts it, the last Close stops it. A
// configuration reload that replaces the groups adds no poller.
var shared struct {
	mu   sync.Mutex
	p    *poller
	refs int
}

func acquirePoller() (*poller, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.p == nil {
		p, err := newPoller()
		if err != nil {
			return nil, err
		}
		shared.p = p
	}
	shared.refs++
	return shared.p, nil
}

func releasePoller() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.refs--; shared.refs == 0 {
		shared.p.close()
		shared.p = nil
	}
}
