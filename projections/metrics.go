package projections

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	applied, skipped, gapFilled *prometheus.CounterVec
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
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.applied, m.skipped, m.gapFilled} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(projection string, r applyResult) {
	m.applied.WithLabelValues(projection).Add(float64(r.applied))
	m.skipped.WithLabelValues(projection).Add(float64(r.skipped))
	m.gapFilled.WithLabelValues(projection).Add(float64(r.gapFilled))
}
