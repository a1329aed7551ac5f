package testenv

import (
	"context"
	"log/slog"
	"testing"

	"github.com/orderflow/orderflow/streams/kafka"
)

// The events topic of an environment's broker, and its partition count.
const (
	Topic      = kafka.DefaultTopic
	Partitions = 8
)

// Broker starts a broker of its own (kfake over TCP on a free 127.0.0.1
// port), closed when the test ends. Topics are never auto-created: use
// CreateTopics. Tests of outages Pause and Resume it.
func Broker(t testing.TB) *kafka.Broker {
	t.Helper()
	b, err := kafka.NewBroker("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("testenv: start broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// CreateTopics creates topics with the given partition count and
// replication factor 1.
func CreateTopics(t testing.TB, brokers []string, partitions int, topics ...string) {
	t.Helper()
	specs := make([]kafka.TopicSpec, 0, len(topics))
	for _, name := range topics {
		specs = append(specs, kafka.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, kafka.Config{Brokers: brokers}, specs...); err != nil {
		t.Fatalf("testenv: create topics: %v", err)
	}
}

// Kafka returns the bootstrap addresses of the environment's broker,
// starting it on first use with Topic (Partitions partitions) and its DLQ.
func (e *Env) Kafka(t testing.TB) []string {
	t.Helper()
	return e.KafkaBroker(t).Addrs()
}

// KafkaBroker is Kafka returning the broker itself.
func (e *Env) KafkaBroker(t testing.TB) *kafka.Broker {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.broker == nil {
		e.broker = Broker(t)
		CreateTopics(t, e.broker.Addrs(), Partitions, Topic)
		CreateTopics(t, e.broker.Addrs(), 1, kafka.DefaultDLQTopic)
	}
	return e.broker
}
