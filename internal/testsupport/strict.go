package testsupport

import (
	"os"
	"testing"
)

// StrictEnv is the environment variable that turns SkipOrFail's skips into
// failures. scripts/test.sh sets it to 1 when it runs as root, after it has
// installed every tool the tests drive, so that in CI a missing tool or a
// kernel feature that does not work is reported instead of silently
// skipped.
const StrictEnv = "SPARTAN_TEST_STRICT"

// Strict reports whether StrictEnv is set to 1.
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// SkipOrFail skips the test with the formatted message, or fails it with
// that message when Strict is true. Use it where a test cannot run because
// the environment lacks something the strict run guarantees (a tool, a
// namespace); use SkipUnlessRoot for the lack of root, which stays a skip.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s=1, so this fails instead of skipping: "+format, append([]any{StrictEnv}, args...)...)
		return
	}
	t.Skipf(format, args...)
}

// SkipUnlessRoot skips the test, saying what needs root, when the process
// is not root. Strict mode does not change it: a test run as an ordinary
// user is not expected to create namespaces or mounts.
func SkipUnlessRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("skipping: needs root for %s; run as root to exercise it", why)
	}
}
