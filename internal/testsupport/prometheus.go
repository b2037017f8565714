package testsupport

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// Metrics is one parsed scrape of a Prometheus text endpoint.
type Metrics map[string]*dto.MetricFamily

// Scrape fetches url (a /metrics endpoint) and parses it strictly: a
// malformed exposition fails the test.
func Scrape(t testing.TB, url string) Metrics {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "scraping %s", url)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "scraping %s", url)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err, "parsing %s", url)
	return fams
}

// Gather collects the metrics of a registry (a prometheus.Gatherer) as
// Scrape would read them from its endpoint.
func Gather(t testing.TB, g interface {
	Gather() ([]*dto.MetricFamily, error)
}) Metrics {
	t.Helper()
	fams, err := g.Gather()
	require.NoError(t, err)
	m := Metrics{}
	for _, f := range fams {
		m[f.GetName()] = f
	}
	return m
}

// Value returns the value of the counter, gauge or untyped series name
// whose labels include every pair in labels ("k", "v", ...), summed over
// all matching series; for a histogram it returns the sample count. ok is
// false when no series matches.
func (m Metrics) Value(name string, labels ...string) (v float64, ok bool) {
	fam := m[name]
	if fam == nil {
		return 0, false
	}
	for _, s := range fam.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		ok = true
		switch {
		case s.Counter != nil:
			v += s.Counter.GetValue()
		case s.Gauge != nil:
			v += s.Gauge.GetValue()
		case s.Untyped != nil:
			v += s.Untyped.GetValue()
		case s.Histogram != nil:
			v += float64(s.Histogram.GetSampleCount())
		}
	}
	return v, ok
}

// Must is Value failing the test when no series matches.
func (m Metrics) Must(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, ok := m.Value(name, labels...)
	require.True(t, ok, "no series %s%v", name, labels)
	return v
}

func hasLabels(s *dto.Metric, labels []string) bool {
	if len(labels)%2 != 0 {
		panic(fmt.Sprintf("testsupport: odd label list %q", labels))
	}
	for i := 0; i < len(labels); i += 2 {
		found := false
		for _, lp := range s.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
