// Package kafkatest starts an embedded Kafka broker (kfake over TCP) for
// tests of any package.
package kafkatest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/orderflow/orderflow/streams/kafka"
)

// Start starts a fresh broker on a free 127.0.0.1 port, closes it when the
// test ends, and returns its bootstrap addresses. Topics are not
// auto-created: use CreateTopics or kafka.EnsureTopics.
func Start(t testing.TB) []string {
	t.Helper()
	return StartBroker(t).Addrs()
}

// StartBroker is Start returning the broker itself, for tests that need
// Pause/Resume (outages) or kfake fault injection.
func StartBroker(t testing.TB) *kafka.Broker {
	t.Helper()
	b, err := kafka.NewBroker("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("kafkatest: start broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// CreateTopics creates topics with the given partition count and
// replication factor 1, failing the test on error.
func CreateTopics(t testing.TB, brokers []string, partitions int, topics ...string) {
	t.Helper()
	specs := make([]kafka.TopicSpec, 0, len(topics))
	for _, name := range topics {
		specs = append(specs, kafka.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, kafka.Config{Brokers: brokers}, specs...); err != nil {
		t.Fatalf("kafkatest: create topics: %v", err)
	}
}
