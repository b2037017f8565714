package testsupport

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// recordingTB records Skipf and Fatalf instead of ending the test.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) { r.skipped = fmt.Sprintf(format, args...) }

func (r *recordingTB) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestSkipOrFail(t *testing.T) {
	for _, tc := range []struct {
		env            string
		skipped, fatal string
	}{
		{env: "", skipped: "no tool x"},
		{env: "0", skipped: "no tool x"},
		{env: "1", fatal: "SPARTAN_TEST_STRICT=1, so this fails instead of skipping: no tool x"},
	} {
		t.Run("env="+tc.env, func(t *testing.T) {
			t.Setenv(StrictEnv, tc.env)
			r := &recordingTB{TB: t}
			SkipOrFail(r, "no tool %s", "x")
			require.Equal(t, tc.skipped, r.skipped)
			require.Equal(t, tc.fatal, r.fatal)
		})
	}
}
