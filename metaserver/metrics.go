package metaserver

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descBlocks      = prometheus.NewDesc("cairn_blocks", "Referenced blocks at the last reconcile pass.", nil, nil)
	descUnder       = prometheus.NewDesc("cairn_blocks_under_replicated", "Referenced blocks with fewer than R copies on live chunkservers at the last pass.", nil, nil)
	descLost        = prometheus.NewDesc("cairn_blocks_lost", "Referenced blocks with no copy on any chunkserver that answered at the last pass.", nil, nil)
	descGarbage     = prometheus.NewDesc("cairn_blocks_awaiting_gc", "Unreferenced blocks waiting out the grace period.", nil, nil)
	descMoved       = prometheus.NewDesc("cairn_bytes_moved_total", "Bytes copied between chunkservers by repair and rebalance.", nil, nil)
	descReclaimed   = prometheus.NewDesc("cairn_bytes_reclaimed_total", "Bytes deleted from chunkservers (garbage and extra copies).", nil, nil)
	descCorrupt     = prometheus.NewDesc("cairn_corrupt_copies_total", "Bad block copies found by scrub or reported by clients.", nil, nil)
	descTasksQueued = prometheus.NewDesc("cairn_tasks_queued", "Background tasks waiting to run.", []string{"kind"}, nil)
	descTasksRun    = prometheus.NewDesc("cairn_tasks_running", "Background tasks running.", []string{"kind"}, nil)
	descTasksDone   = prometheus.NewDesc("cairn_tasks_done_total", "Background tasks that succeeded.", []string{"kind"}, nil)
	descTasksFailed = prometheus.NewDesc("cairn_tasks_failed_total", "Background tasks that failed after every retry.", []string{"kind"}, nil)
	descNodes       = prometheus.NewDesc("cairn_chunkservers", "Chunkservers in the cluster map by state.", []string{"state"}, nil)
)

// collector exposes the scheduler's state to Prometheus; it reads the
// same snapshot that `cairn status` shows.
type collector struct{ s *Server }

func (c collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	t := c.s.sched.stats()
	gauge := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descBlocks, t.Blocks)
	gauge(descUnder, t.UnderReplicated)
	gauge(descLost, t.Lost)
	gauge(descGarbage, t.Garbage)
	counter(descMoved, t.BytesMoved)
	counter(descReclaimed, t.BytesReclaimed)
	counter(descCorrupt, t.CorruptFound)
	for _, k := range t.Kinds {
		gauge(descTasksQueued, k.Queued, k.Kind)
		gauge(descTasksRun, k.Running, k.Kind)
		counter(descTasksDone, k.Done, k.Kind)
		counter(descTasksFailed, k.Failed, k.Kind)
	}
	states := map[string]uint64{"up": 0, "down": 0, "draining": 0}
	for _, n := range c.s.members.snapshot().Nodes {
		states[n.State.String()]++
	}
	for st, n := range states {
		gauge(descNodes, n, st)
	}
}

// Metrics returns a registry with the metaserver's metrics, to serve on
// /metrics.
func (s *Server) Metrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{s})
	reg.MustRegister(s.rpc.Collectors()...)
	return reg
}
