package projections

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	applied, skipped, gapFilled, parked *prometheus.CounterVec
	batchSize, batchSeconds             *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "projection_events_applied_total", Help: "Events applied to a read model.",
		}, []string{"projection"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "projection_events_skipped_total", Help: "Redelivered events skipped because their version was already applied.",
		}, []string{"projection"}),
		gapFilled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "projection_gap_events_total", Help: "Events read from the event store to fill a gap in Kafka delivery.",
		}, []string{"projection"}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "projection_events_parked_total", Help: "Events parked behind an earlier event of their order that the projection could not apply (projection_dead_letters).",
		}, []string{"projection"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "projection_batch_size", Help: "Events delivered per transaction (a batch, or one event retried alone).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7), // 1 … 4096
		}, []string{"projection"}),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "projection_batch_seconds", Help: "Time to apply one batch, commit included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8), // 0.5ms … 8s
		}, []string{"projection"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.applied, m.skipped, m.gapFilled, m.parked, m.batchSize, m.batchSeconds} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(projection string, r applyResult, delivered int, took time.Duration) {
	m.applied.WithLabelValues(projection).Add(float64(r.applied))
	m.skipped.WithLabelValues(projection).Add(float64(r.skipped))
	m.gapFilled.WithLabelValues(projection).Add(float64(r.gapFilled))
	m.parked.WithLabelValues(projection).Add(float64(r.parked))
	m.batchSize.WithLabelValues(projection).Observe(float64(delivered))
	m.batchSeconds.WithLabelValues(projection).Observe(took.Seconds())
}
