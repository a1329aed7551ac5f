package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/kafka"
)

func TestEnsureTopics(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	cfg := kafka.Config{Brokers: brokers}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := kafka.TopicSpec{Name: "orders.events", Partitions: 6, ReplicationFactor: 1}

	t.Run("missing topics are created and a second call is a no-op", func(t *testing.T) {
		for range 2 {
			if err := kafka.EnsureTopics(ctx, cfg, events); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("an existing topic with another partition count is reported, not altered, and others are still created", func(t *testing.T) {
		wrong := events
		wrong.Partitions = 12
		dlq := kafka.TopicSpec{Name: "orders.events.dlq", Partitions: 1, ReplicationFactor: 1}
		err := kafka.EnsureTopics(ctx, cfg, wrong, dlq)
		var mm *kafka.TopicMismatchError
		if !errors.Is(err, kafka.ErrTopicMismatch) || !errors.As(err, &mm) || mm.Have != 6 || mm.Want != 12 {
			t.Fatalf("err = %v", err)
		}
		if err := kafka.EnsureTopics(ctx, cfg, events, dlq); err != nil {
			t.Fatalf("topic was altered or dlq not created: %v", err)
		}
	})
	t.Run("invalid specs are rejected", func(t *testing.T) {
		if err := kafka.EnsureTopics(ctx, cfg, kafka.TopicSpec{Name: "x"}); err == nil {
			t.Fatal("want error")
		}
	})
}
