package chunkserver

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// stats counts what the chunkserver's background work has done.
type stats struct {
	deleted, freed, fetched, scrubbed, corrupt atomic.Uint64
}

var (
	descUsed     = prometheus.NewDesc("cairn_chunk_disk_used_bytes", "Bytes used on the chunkserver's disk.", nil, nil)
	descTotal    = prometheus.NewDesc("cairn_chunk_disk_total_bytes", "Size of the chunkserver's disk.", nil, nil)
	descDeleted  = prometheus.NewDesc("cairn_chunk_blocks_deleted_total", "Blocks deleted (garbage and extra copies).", nil, nil)
	descFreed    = prometheus.NewDesc("cairn_chunk_bytes_reclaimed_total", "Bytes freed by deleting blocks.", nil, nil)
	descFetched  = prometheus.NewDesc("cairn_chunk_bytes_fetched_total", "Bytes copied in from other chunkservers (repair, rebalance).", nil, nil)
	descScrubbed = prometheus.NewDesc("cairn_chunk_bytes_scrubbed_total", "Bytes re-hashed by the scrub.", nil, nil)
	descCorrupt  = prometheus.NewDesc("cairn_chunk_corrupt_blocks_total", "Blocks the scrub found failing their hash (quarantined).", nil, nil)
)

// collector exposes a chunkserver's state to Prometheus.
type collector struct{ s *Server }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	used, total := c.s.store.usage()
	st := &c.s.stats
	ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, float64(used))
	ch <- prometheus.MustNewConstMetric(descTotal, prometheus.GaugeValue, float64(total))
	for _, m := range []struct {
		d *prometheus.Desc
		v *atomic.Uint64
	}{{descDeleted, &st.deleted}, {descFreed, &st.freed}, {descFetched, &st.fetched}, {descScrubbed, &st.scrubbed}, {descCorrupt, &st.corrupt}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v.Load()))
	}
}

// Metrics returns a registry with the chunkserver's metrics, to serve on
// /metrics.
func (s *Server) Metrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{s})
	reg.MustRegister(s.rpc.Collectors()...)
	return reg
}
