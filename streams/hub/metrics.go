package hub

import "github.com/prometheus/client_golang/prometheus"

// metrics has no per-channel or per-order labels: cardinality stays fixed.
type metrics struct {
	connections    prometheus.Gauge
	subscriptions  prometheus.Gauge
	framesSent     prometheus.Counter
	slowDisconnect prometheus.Counter
	recoveries     *prometheus.CounterVec
	storeFills     prometheus.Counter
	filledEvents   prometheus.Counter
	customerLoads  prometheus.Counter
	badMessages    prometheus.Counter
	head           prometheus.Gauge
	refused        *prometheus.CounterVec
	rateLimited    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hub_connections", Help: "Open WebSocket connections."}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hub_subscriptions", Help: "Channel subscriptions over all connections."}),
		framesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hub_frames_sent_total", Help: "Frames written to WebSocket connections."}),
		slowDisconnect: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hub_slow_disconnects_total", Help: "Connections closed with 4008 because their send queue was full."}),
		recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hub_recoveries_total", Help: "Subscriptions with since, by whether every missed event was delivered."},
			[]string{"recovered"}),
		storeFills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hub_sequencer_store_fills_total", Help: "Times the sequencer read the store to close a position gap or catch up."}),
		filledEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hub_sequencer_filled_events_total", Help: "Events the sequencer took from the store instead of Kafka."}),
		customerLoads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hub_customer_store_lookups_total", Help: "Order→customer cache misses answered by the store."}),
		badMessages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hub_bad_kafka_messages_total", Help: "Kafka messages that were not event envelopes (skipped)."}),
		head: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hub_head_position", Help: "Last global position fanned out."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hub_refused_connections_total", Help: "Connections closed at once because a cap was reached: limit=node (1013) or client (4029)."},
			[]string{"limit"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hub_subscribes_rate_limited_total", Help: "Subscribe frames refused with rate_limited."}),
	}
	m.recoveries.WithLabelValues("true")
	m.recoveries.WithLabelValues("false")
	m.refused.WithLabelValues("node")
	m.refused.WithLabelValues("client")
	for _, c := range []prometheus.Collector{m.connections, m.subscriptions, m.framesSent, m.slowDisconnect,
		m.recoveries, m.storeFills, m.filledEvents, m.customerLoads, m.badMessages, m.head, m.refused, m.rateLimited} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
