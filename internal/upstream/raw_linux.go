package upstream

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls of a UDP leg: connect, write, read and close of a
// non-blocking datagram socket, and the poller's zero-timeout epoll_wait
// that finds the ready legs. None of them can block, so they are made
// raw, without the runtime's entersyscall/exitsyscall, as the runtime
// makes its own non-blocking calls. Through syscall.Syscall, a call that
// takes longer than the runtime monitor's 20 µs tick (a write on loopback
// runs the receiving side's network stack in the same call) makes the
// monitor hand the processor to another thread, which wakes that thread
// and parks this one when the call returns.

// rawConnect connects fd to the socket address at ptr (size bytes).
func rawConnect(fd int, ptr unsafe.Pointer, size uintptr) syscall.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(ptr), size)
	return e
}

// rawWrite writes p (not empty) to fd.
func rawWrite(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// rawRead reads into p (not empty) from fd.
func rawRead(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// rawClose closes fd. Closing a UDP socket does not block (there is
// nothing to flush); an error leaves nothing to retry on Linux.
func rawClose(fd int) { _, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// rawEpollPoll returns the ready events of the epoll instance epfd without
// waiting (epoll_pwait with no signal mask is epoll_wait, which some
// architectures lack).
func rawEpollPoll(epfd int, events []syscall.EpollEvent) (int, syscall.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	return int(n), e
}
