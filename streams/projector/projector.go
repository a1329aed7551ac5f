// Package projector feeds the read models from Kafka: one consumer group per
// projection on the events topic, all handlers under one watermill Router
// with the project's standard middleware (correlation, poison queue to the
// DLQ, retry with backoff, recoverer).
//
// Each projection is its own consumer group ("orderflow.projection.<name>"),
// so a slow or failing read model never holds back another, and a rebuild
// of one leaves the others running. The subscriber delivers a partition's
// messages one at a time and commits an offset only after the projection's
// transaction committed (the handler returned nil): at least once, made
// exactly once in effect by the runtime's version check.
package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/kafka"
)

// Config configures a projector.
type Config struct {
	Kafka    kafka.Config
	Topic    string // the events topic
	DLQTopic string // default kafka.DLQTopic(Topic)
	// Partitions of the events topic if the projector has to create it
	// (the relay may not have yet). Default 12.
	Partitions  int
	Runtime     *projections.Runtime
	Projections []projections.Projection
	// GroupPrefix prefixes consumer group ids. Default "orderflow.projection.".
	GroupPrefix string
	// MaxRetries before an event is dead-lettered, waiting InitialInterval
	// then doubling. Defaults 5 and 100ms.
	MaxRetries      int
	InitialInterval time.Duration
	// SessionTimeout is how long the group waits for a member that stopped
	// heartbeating (a crashed process) before handing its partitions to the
	// others, and how long a rebalance waits for every member to rejoin;
	// members heartbeat every tenth of it. Default 30s (kafka-go's).
	SessionTimeout time.Duration
	Registerer     prometheus.Registerer
	Logger         *slog.Logger
	// OnState is told when the projector starts (running) and when it stops
	// on an error (failed), for projection status.
	OnState func(ctx context.Context, projection, state, detail string)
}

// GroupID is the consumer group of a projection.
func (c Config) GroupID(p projections.Projection) string {
	prefix := c.GroupPrefix
	if prefix == "" {
		prefix = "orderflow.projection."
	}
	return prefix + p.Name()
}

// Run consumes until ctx ends, then closes the router (which waits for the
// handlers in flight and makes the subscribers' final commits).
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Runtime == nil || len(cfg.Projections) == 0 || cfg.Topic == "" {
		return errors.New("projector: Runtime, Projections and Topic are required")
	}
	if cfg.DLQTopic == "" {
		cfg.DLQTopic = kafka.DLQTopic(cfg.Topic)
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 12
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 30 * time.Second
	}
	// A consumer group cannot join a topic that does not exist yet, and a
	// poison message needs its DLQ: create what is missing, change nothing.
	err := kafka.EnsureTopics(ctx, cfg.Kafka,
		kafka.TopicSpec{Name: cfg.Topic, Partitions: cfg.Partitions, ReplicationFactor: 1},
		kafka.TopicSpec{Name: cfg.DLQTopic, Partitions: 1, ReplicationFactor: 1})
	if err != nil && !errors.Is(err, kafka.ErrTopicMismatch) {
		return fmt.Errorf("projector: topics: %w", err)
	} else if err != nil {
		cfg.Logger.Warn("projector: existing topic differs from the configuration; left unchanged", "err", err)
	}
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Config: cfg.Kafka}, cfg.Logger)
	if err != nil {
		return fmt.Errorf("projector: DLQ publisher: %w", err)
	}
	defer func() { _ = pub.Close() }()
	dlq, err := newDLQCounter(pub, cfg.Registerer)
	if err != nil {
		return err
	}
	router, err := kafka.NewRouter(cfg.Logger, kafka.RouterOptions{
		DLQPublisher: dlq,
		DLQTopic:     cfg.DLQTopic,
		// A projection failing because PostgreSQL is down is redelivered
		// until it is back, never dead-lettered.
		Transient:       pg.Unavailable,
		MaxRetries:      cfg.MaxRetries,
		InitialInterval: cfg.InitialInterval,
		Registerer:      cfg.Registerer,
	})
	if err != nil {
		return err
	}
	var subs []*kafka.Subscriber
	defer func() {
		for _, s := range subs {
			_ = s.Close()
		}
	}()
	for _, p := range cfg.Projections {
		sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
			Config:            cfg.Kafka,
			GroupID:           cfg.GroupID(p),
			StartOffset:       kafka.FirstOffset,
			SessionTimeout:    cfg.SessionTimeout,
			RebalanceTimeout:  cfg.SessionTimeout,
			HeartbeatInterval: cfg.SessionTimeout / 10,
		}, cfg.Logger.With("projection", p.Name()))
		if err != nil {
			return err
		}
		subs = append(subs, sub)
		// The handler is named after the projection: the poison queue
		// records it, and projection_dlq_total is labelled with it.
		router.AddConsumerHandler(p.Name(), cfg.Topic, sub, handler(cfg.Runtime, p))
		if cfg.OnState != nil {
			cfg.OnState(ctx, p.Name(), "running", "consuming "+cfg.Topic+" as "+cfg.GroupID(p))
		}
	}
	err = router.Run(ctx)
	if err != nil && ctx.Err() == nil && cfg.OnState != nil {
		for _, p := range cfg.Projections {
			cfg.OnState(context.WithoutCancel(ctx), p.Name(), "failed", err.Error())
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}
