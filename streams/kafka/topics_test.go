package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

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

// A three-broker kfake cluster holds topics of three replicas, so the
// replication checks run against what a real cluster answers.
func TestEnsureTopicsReplication(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cfg := kafka.Config{Brokers: cluster.ListenAddrs()}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	durable := kafka.TopicSpec{Name: "durable", Partitions: 3, ReplicationFactor: 3, MinInsyncReplicas: 2}

	t.Run("a missing topic is created with the replication factor and min.insync.replicas asked for", func(t *testing.T) {
		for range 2 {
			if err := kafka.EnsureTopics(ctx, cfg, durable); err != nil {
				t.Fatal(err)
			}
		}
		if err := kafka.CheckTopics(ctx, cfg, durable); err != nil {
			t.Fatalf("the created topic does not pass the check: %v", err)
		}
	})
	t.Run("a topic with fewer replicas than configured is reported, not altered", func(t *testing.T) {
		single := kafka.TopicSpec{Name: "single", Partitions: 3, ReplicationFactor: 1}
		if err := kafka.EnsureTopics(ctx, cfg, single); err != nil {
			t.Fatal(err)
		}
		want := single
		want.ReplicationFactor, want.MinInsyncReplicas = 3, 2
		for _, check := range []func(context.Context, kafka.Config, ...kafka.TopicSpec) error{kafka.EnsureTopics, kafka.CheckTopics} {
			err := check(ctx, cfg, want)
			var ur *kafka.UnderReplicatedError
			if !errors.Is(err, kafka.ErrTopicMismatch) || !errors.As(err, &ur) || ur.HaveReplicas != 1 || ur.WantReplicas != 3 {
				t.Fatalf("err = %v, want an UnderReplicatedError with 1 replica of 3", err)
			}
		}
	})
	t.Run("a topic with a lower min.insync.replicas than configured is reported", func(t *testing.T) {
		lax := kafka.TopicSpec{Name: "lax", Partitions: 1, ReplicationFactor: 3, MinInsyncReplicas: 1}
		if err := kafka.EnsureTopics(ctx, cfg, lax); err != nil {
			t.Fatal(err)
		}
		lax.MinInsyncReplicas = 2
		var ur *kafka.UnderReplicatedError
		if err := kafka.CheckTopics(ctx, cfg, lax); !errors.As(err, &ur) || ur.HaveMinInsync != 1 || ur.WantMinInsync != 2 {
			t.Fatalf("err = %v, want an UnderReplicatedError with min.insync.replicas 1 of 2", err)
		}
	})
	t.Run("CheckTopics reports a missing topic and creates nothing", func(t *testing.T) {
		absent := kafka.TopicSpec{Name: "absent", Partitions: 1, ReplicationFactor: 3}
		for range 2 {
			if err := kafka.CheckTopics(ctx, cfg, absent); err == nil || errors.Is(err, kafka.ErrTopicMismatch) {
				t.Fatalf("err = %v, want: does not exist", err)
			}
		}
	})
	t.Run("a min.insync.replicas above the replication factor is an invalid spec", func(t *testing.T) {
		if err := kafka.EnsureTopics(ctx, cfg, kafka.TopicSpec{Name: "x", Partitions: 1, ReplicationFactor: 2, MinInsyncReplicas: 3}); err == nil {
			t.Fatal("want error")
		}
	})
}
