package relay

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are registered on the injected registerer, never the global one.
// No per-stream labels: cardinality stays fixed.
type metrics struct {
	lagEvents      prometheus.Gauge
	lagSeconds     prometheus.Gauge
	published      prometheus.Counter
	publishErrors  prometheus.Counter
	batchSize      prometheus.Histogram
	publishSeconds prometheus.Histogram
	leader         prometheus.Gauge
	kafkaUp        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lagEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_lag_events", Help: "Committed events not yet acknowledged by Kafka (head position minus checkpoint)."}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_lag_seconds", Help: "Age of the oldest event not yet acknowledged by Kafka; 0 when caught up."}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_published_total", Help: "Messages acknowledged by Kafka (duplicates after retries included)."}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_publish_errors_total", Help: "Failed write calls to Kafka (each is retried)."}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "relay_batch_size", Help: "Messages per write call.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7)}), // 1 … 4096
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "relay_publish_seconds", Help: "Duration of one write call, until Kafka acknowledged or failed.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}), // 0.5ms … ~30s
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_leader", Help: "1 while this process holds the relay lock and publishes."}),
		kafkaUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_kafka_up", Help: "1 while the last Kafka call succeeded; 0 after a failure."}),
	}
	for _, c := range []prometheus.Collector{m.lagEvents, m.lagSeconds, m.published, m.publishErrors,
		m.batchSize, m.publishSeconds, m.leader, m.kafkaUp} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("relay metrics: %w", err)
		}
	}
	return m, nil
}
