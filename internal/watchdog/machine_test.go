package watchdog

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMachine drives the state machine with a script of observations, one
// per second: '+' a good check, '-' a failed one. want is the state after
// each ('U' up, 'D' down) and restarts marks the observations that asked
// for a restart ('R').
func TestMachine(t *testing.T) {
	tests := []struct {
		name         string
		fail, recov  int
		restartAfter time.Duration
		script       string
		want         string
		restarts     string
	}{
		{name: "starts up", fail: 3, recov: 2, script: "++++", want: "UUUU"},
		{name: "starts down", fail: 3, recov: 2, script: "-++-", want: "DDUU"},
		{name: "blips do not flap", fail: 3, recov: 2, script: "+--+--+-+", want: "UUUUUUUUU"},
		{name: "three failures go down", fail: 3, recov: 2, script: "+---+", want: "UUUDD"},
		{name: "recovery needs a streak", fail: 3, recov: 2, script: "+---+-+-++", want: "UUUDDDDDDU"},
		{name: "fail after 1", fail: 1, recov: 1, script: "+-+-", want: "UDUD"},
		{
			name: "restart after 5s of failure, then every 5s", fail: 2, recov: 2, restartAfter: 5 * time.Second,
			script:   "+------------",
			want:     "UUDDDDDDDDDDD",
			restarts: "......R....R.",
		},
		{
			name: "a success during the outage restarts the clock", fail: 2, recov: 3, restartAfter: 3 * time.Second,
			script:   "----+----",
			want:     "DDDDDDDDD",
			restarts: "...R....R",
		},
		{
			name: "recovered proxy starts afresh", fail: 1, recov: 1, restartAfter: 2 * time.Second,
			script:   "---+---",
			want:     "DDDUDDD",
			restarts: "..R...R",
		},
		{name: "no escalation when off", fail: 1, recov: 1, script: "--------", want: "DDDDDDDD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Machine{FailAfter: tc.fail, RecoverAfter: tc.recov, RestartAfter: tc.restartAfter}
			require.Equal(t, Unknown, m.State())
			t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			var got, restarts strings.Builder
			prev := Unknown
			for i, c := range tc.script {
				step := m.Observe(c == '+', t0.Add(time.Duration(i)*time.Second))
				require.Equal(t, step.State != prev, step.Changed, "observation %d", i)
				prev = step.State
				got.WriteByte(strings.ToUpper(step.State.String())[0])
				if step.Restart {
					restarts.WriteByte('R')
				} else {
					restarts.WriteByte('.')
				}
			}
			require.Equal(t, tc.want, got.String())
			wantRestarts := tc.restarts
			if wantRestarts == "" {
				wantRestarts = strings.Repeat(".", len(tc.script))
			}
			require.Equal(t, wantRestarts, restarts.String())
		})
	}
}
