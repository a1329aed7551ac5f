package projector

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/projections"
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

// parkedCollector reports projection_dead_letters, the dead letters parked
// per projection, read from the database at scrape time (one indexed
// count): the table is shared by every projector node, so each reports the
// same total (max over nodes, not sum). A scrape that cannot read it
// reports nothing rather than a wrong zero.
type parkedCollector struct {
	desc *prometheus.Desc
	rt   *projections.Runtime
}

func newParkedCollector(rt *projections.Runtime) *parkedCollector {
	return &parkedCollector{rt: rt, desc: prometheus.NewDesc("projection_dead_letters",
		"Dead letters parked: events a projection could not apply and the later events of their orders (orderflow dlq list); the same on every node.",
		[]string{"projection"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *parkedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *parkedCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.rt.ParkedCounts(ctx)
	if err != nil {
		return
	}
	for name, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), name)
	}
}
