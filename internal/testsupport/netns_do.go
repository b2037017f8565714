package testsupport

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Do runs fn on the calling goroutine with its OS thread switched into the
// namespace, so the sockets fn opens (a fake upstream from StartUpstream,
// say) live in the namespace and serve its processes, while the test keeps
// them in-process: counters, behaviours and Stop work as usual. The thread
// is switched back before Do returns, also when fn fails the test; if that
// cannot be done the thread stays locked and dies with the goroutine, so no
// other code ever runs in the wrong namespace.
//
// Goroutines fn starts run on other threads, in the test's own namespace:
// fn must open its sockets itself, not leave that to a goroutine.
func (ns *NetNS) Do(t testing.TB, fn func()) {
	t.Helper()
	target, err := os.Open(filepath.Join("/run/netns", ns.Name))
	if err != nil {
		t.Fatalf("testsupport: opening network namespace %s: %v", ns.Name, err)
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("testsupport: opening this thread's network namespace: %v", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("testsupport: entering network namespace %s: %v", ns.Name, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Still locked: the runtime ends the thread with the
			// goroutine, which FailNow ends now.
			t.Fatalf("testsupport: leaving network namespace %s: %v", ns.Name, err)
		}
		runtime.UnlockOSThread()
	}()
	fn()
}
