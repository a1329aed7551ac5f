package projector

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/streams/kafka"
)

// lagCollector reports each projection's consumer lag at scrape time, from
// what this process's consumers last heard from Kafka. No per-order or
// per-partition labels: projection only.
type lagCollector struct {
	events, seconds *prometheus.Desc
	names           []string
	consumers       []*kafka.BatchConsumer
}

func newLagCollector() *lagCollector {
	return &lagCollector{
		events: prometheus.NewDesc("projection_lag_events",
			"Events in Kafka not yet applied to the projection, over the partitions this process holds (sum over processes).",
			[]string{"projection"}, nil),
		seconds: prometheus.NewDesc("projection_lag_seconds",
			"Age of the oldest event not yet applied to the projection, over the partitions this process holds (max over processes); 0 when caught up.",
			[]string{"projection"}, nil),
	}
}

func (l *lagCollector) add(name string, c *kafka.BatchConsumer) {
	l.names, l.consumers = append(l.names, name), append(l.consumers, c)
}

// Describe implements prometheus.Collector.
func (l *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- l.events
	ch <- l.seconds
}

// Collect implements prometheus.Collector.
func (l *lagCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for i, c := range l.consumers {
		lag := c.Lag(now)
		ch <- prometheus.MustNewConstMetric(l.events, prometheus.GaugeValue, float64(lag.Events), l.names[i])
		ch <- prometheus.MustNewConstMetric(l.seconds, prometheus.GaugeValue, lag.Oldest.Seconds(), l.names[i])
	}
}
