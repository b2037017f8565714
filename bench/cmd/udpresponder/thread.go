package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// serveThread is serveFixed on a locked OS thread that blocks in recvfrom
// and sendto (system calls the runtime sees as blocking, out of the
// network poller) on a blocking duplicate of the socket, with no
// allocation per query. SIGTERM or SIGINT shuts the socket down, which
// ends a blocked recvfrom.
func serveThread(uc *net.UDPConn, prepared []byte, qend int) error {
	f, err := uc.File() // a blocking duplicate of the socket
	if err != nil {
		return fmt.Errorf("dup socket: %w", err)
	}
	defer f.Close()
	uc.Close() // the duplicate keeps the socket; only it is read
	fd := f.Fd()
	var stopping atomic.Bool
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		stopping.Store(true)
		_ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR)
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	in := make([]byte, 1500)
	out := make([]byte, len(prepared))
	copy(out, prepared)
	var from syscall.RawSockaddrInet6 // room for either family
	for {
		fromLen := uint32(unsafe.Sizeof(from))
		r, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&in[0])), uintptr(len(in)), 0,
			uintptr(unsafe.Pointer(&from)), uintptr(unsafe.Pointer(&fromLen)))
		n := int(r)
		if errno != 0 || n == 0 {
			if stopping.Load() {
				return nil
			}
			continue
		}
		if n < qend {
			continue
		}
		binary.BigEndian.PutUint16(out, binary.BigEndian.Uint16(in))
		copy(out[12:qend], in[12:qend])
		_, _, _ = syscall.Syscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&out[0])), uintptr(len(out)), 0,
			uintptr(unsafe.Pointer(&from)), uintptr(fromLen))
	}
}
