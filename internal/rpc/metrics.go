package rpc

import (
	"context"
	"time"

	"github.com/cairn-fs/cairn/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// callMetrics counts and times the calls a server answers, by method:
// how many calls an operation costs, and where a slow one waits.
type callMetrics struct {
	calls   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

func newCallMetrics() *callMetrics {
	return &callMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_rpc_calls_total",
			Help: "Calls answered, by method and result (ok or error).",
		}, []string{"method", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_rpc_call_seconds",
			Help:    "Time from a request read in full to its answer, by method.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10), // 10 µs to 2.6 s
		}, []string{"method"}),
	}
}

// instrument wraps every handler of mux, in place, so that a handler
// that dispatches to another through the map (MOnce) counts the inner
// method too.
func (cm *callMetrics) instrument(mux Mux) {
	for m, h := range mux {
		name := m.String()
		ok, failed := cm.calls.WithLabelValues(name, "ok"), cm.calls.WithLabelValues(name, "error")
		seconds := cm.seconds.WithLabelValues(name)
		mux[m] = func(ctx context.Context, body []byte) (wire.Message, error) {
			start := time.Now()
			resp, err := h(ctx, body)
			seconds.Observe(time.Since(start).Seconds())
			if err != nil {
				failed.Inc()
			} else {
				ok.Inc()
			}
			return resp, err
		}
	}
}

// Collectors are the server's call metrics, for a daemon's registry.
func (s *Server) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.calls, s.metrics.seconds}
}
