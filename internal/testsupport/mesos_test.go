package testsupport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func getState(t *testing.T, url string, follow bool) (int, map[string]any, http.Header, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	c := &http.Client{}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, resp.Header, err
	}
	var st map[string]any
	if json.Unmarshal(body, &st) != nil {
		st = nil
	}
	return resp.StatusCode, st, resp.Header, nil
}

func TestFakeMesosMaster(t *testing.T) {
	a := NewFakeMesosMaster(t, []byte(`{"frameworks":[{"name":"marathon"}],"slaves":[{"id":"s1"}]}`))
	b := NewFakeMesosMaster(t, []byte(`{"frameworks":[{"name":"other"}]}`))
	base := "http://" + a.Addr()

	code, st, _, err := getState(t, base+"/master/state", true)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "master@"+a.Addr(), st["leader"])
	require.Equal(t, "master@"+a.Addr(), st["pid"])
	require.Len(t, st["frameworks"], 1)

	code, st, _, err = getState(t, base+"/state.json", true)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, st["frameworks"], 1)

	a.ServePaths("/state")
	code, _, _, err = getState(t, base+"/master/state", true)
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, code)
	a.ServePaths("/master/state")

	// Not the leader: a leaderless state naming b, or a redirect to b.
	a.SetLeader(b.Addr())
	_, st, _, err = getState(t, base+"/master/state", true)
	require.NoError(t, err)
	require.Equal(t, "master@"+b.Addr(), st["leader"])
	require.Empty(t, st["frameworks"])
	code, _, hdr, err := getState(t, base+"/master/redirect", false)
	require.NoError(t, err)
	require.Equal(t, http.StatusTemporaryRedirect, code)
	require.Equal(t, "//"+b.Addr(), hdr.Get("Location"))
	a.RedirectToLeader(true)
	_, st, _, err = getState(t, base+"/master/state", true)
	require.NoError(t, err)
	require.Equal(t, "other", st["frameworks"].([]any)[0].(map[string]any)["name"])
	a.OmitLeader(true)
	a.RedirectToLeader(false)
	_, st, _, err = getState(t, base+"/master/state", true)
	require.NoError(t, err)
	require.NotContains(t, st, "leader")
	a.SetLeader("")
	a.OmitLeader(false)

	a.SetMode(MesosFail)
	code, _, _, err = getState(t, base+"/master/state", true)
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, code)

	for _, mode := range []MesosMode{MesosGarbage, MesosTruncated} {
		a.SetMode(mode)
		code, st, _, err = getState(t, base+"/master/state", true)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		require.Nil(t, st, "mode %d must not serve valid JSON", mode)
	}

	a.SetMode(MesosHang)
	_, _, _, err = getState(t, base+"/master/state", true)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "hang: %v", err)

	a.SetMode(MesosOK)
	a.SetState(t, []byte(`{"frameworks":[]}`))
	_, st, _, err = getState(t, base+"/master/state", true)
	require.NoError(t, err)
	require.Empty(t, st["frameworks"])
	require.Equal(t, 10, a.Requests("/master/state"))
	require.Equal(t, 1, a.Requests("/master/redirect"))
	// Every state endpoint, not the redirect, by client host.
	require.Equal(t, 11, a.StatePolls(""))
	require.Equal(t, 11, a.StatePolls("127.0.0.1"))
	require.Zero(t, a.StatePolls("192.0.2.1"))
	require.Equal(t, 1, b.StatePolls("127.0.0.1"))
}

// TestFakeMesosMasterPollsTakeTheState: a request counted after SetState
// returned is answered with the new state.
func TestFakeMesosMasterPollsTakeTheState(t *testing.T) {
	m := NewFakeMesosMaster(t, []byte(`{"frameworks":[]}`))
	for i := range 5 {
		m.SetState(t, []byte(`{"frameworks":[],"n":`+strconv.Itoa(i)+`}`))
		before := m.StatePolls("")
		_, st, _, err := getState(t, "http://"+m.Addr()+"/master/state", true)
		require.NoError(t, err)
		require.Equal(t, float64(i), st["n"])
		require.Equal(t, before+1, m.StatePolls(""))
	}
}
