package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/errgroup"

	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/kafka"
)

// Config configures a projector. Zero values mean the documented defaults.
type Config struct {
	Kafka    kafka.Config
	Topic    string // the events topic
	DLQTopic string // default kafka.DLQTopic(Topic)
	// Partitions of the events topic if the projector has to create it
	// (the relay may not have yet). Default 12.
	Partitions int
	// Verifier decides which messages are the relay's (streams/envelope):
	// a message it refuses is never applied; it goes to the dead-letter
	// topic at once, with the reason. Required (envelope.TrustAll for a
	// trusted topic).
	Verifier    *envelope.Verifier
	Runtime     *projections.Runtime
	Projections []projections.Projection
	// GroupPrefix prefixes consumer group ids. Default "orderflow.projection.".
	GroupPrefix string
	// MaxBatch bounds the events of one batch (one transaction per
	// projection); Linger is how long a batch waits to fill after its first
	// event; offsets are committed every CommitInterval. Defaults 1000,
	// 10ms and 1s (kafka.BatchConsumerConfig's).
	MaxBatch       int
	Linger         time.Duration
	CommitInterval time.Duration
	// MaxRetries before an event retried alone is dead-lettered, waiting
	// InitialInterval then doubling. Defaults 5 and 100ms.
	MaxRetries      int
	InitialInterval time.Duration
	// SessionTimeout is how long the group waits for a member that stopped
	// heartbeating (a crashed process) before handing its partitions to the
	// others, and how long a rebalance waits for every member to rejoin;
	// members heartbeat every tenth of it. Default 30s (kafka-go's).
	SessionTimeout time.Duration
	Registerer     prometheus.Registerer
	Logger         *slog.Logger
	// Tracer opens a span per batch and projection, linked to its events'
	// traces (trace.go). Default: the no-op tracer.
	Tracer trace.Tracer
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

// Run consumes until ctx ends, then stops the consumers (each makes a last
// offset commit) and the router (which waits for the events in flight).
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("")
	}
	if cfg.Runtime == nil || len(cfg.Projections) == 0 || cfg.Topic == "" || cfg.Verifier == nil {
		return errors.New("projector: Runtime, Projections, Topic and Verifier are required")
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
	parked, err := newParker(cfg.Runtime, cfg.Projections, cfg.Registerer)
	if err != nil {
		return err
	}
	router, err := kafka.NewRouter(cfg.Logger, kafka.RouterOptions{
		DLQPublisher: parked,
		DLQTopic:     cfg.DLQTopic,
		// An event retried alone that still fails because the database is
		// away (or restarting, or picked it as a deadlock victim) is nacked
		// and redelivered until it is back: only an event's own failure
		// dead-letters it.
		Transient: projections.Transient,
		// An event a column or constraint of the read model refuses is
		// refused again on every retry: it is parked at once, so the
		// other orders wait for one attempt, not for the retry budget.
		Permanent:       projections.Permanent,
		MaxRetries:      cfg.MaxRetries,
		InitialInterval: cfg.InitialInterval,
		Registerer:      cfg.Registerer,
	})
	if err != nil {
		return err
	}

	lag := newLagCollector()
	var consumers []*consumer
	for _, p := range cfg.Projections {
		log := cfg.Logger.With("projection", p.Name())
		bc, err := kafka.NewBatchConsumer(kafka.BatchConsumerConfig{
			Config:            cfg.Kafka,
			GroupID:           cfg.GroupID(p),
			Topic:             cfg.Topic,
			StartOffset:       kafka.FirstOffset,
			MaxBatch:          cfg.MaxBatch,
			Linger:            cfg.Linger,
			CommitInterval:    cfg.CommitInterval,
			SessionTimeout:    cfg.SessionTimeout,
			RebalanceTimeout:  cfg.SessionTimeout,
			HeartbeatInterval: cfg.SessionTimeout / 10,
		}, log)
		if err != nil {
			return err
		}
		refusals, err := envelope.NewRefusals(cfg.Registerer, cfg.GroupID(p), log)
		if err != nil {
			return fmt.Errorf("projector: metrics: %w", err)
		}
		c := &consumer{p: p, rt: cfg.Runtime, kafka: bc, alone: newHandoff(), log: log, tracer: cfg.Tracer,
			verifier: cfg.Verifier, refusals: refusals, dlq: pub, topic: cfg.Topic, dlqTopic: cfg.DLQTopic}
		consumers = append(consumers, c)
		lag.add(p.Name(), bc)
		// The handler is named after the projection: the poison queue
		// records it, and projection_dlq_total is labelled with it.
		router.AddConsumerHandler(p.Name(), cfg.Topic, c.alone, handler(cfg.Runtime, p))
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(lag); err != nil {
			return fmt.Errorf("projector: metrics: %w", err)
		}
		defer cfg.Registerer.Unregister(lag)
		gauge := newParkedCollector(cfg.Runtime)
		if err := cfg.Registerer.Register(gauge); err != nil {
			return fmt.Errorf("projector: metrics: %w", err)
		}
		defer cfg.Registerer.Unregister(gauge)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return router.Run(gctx) })
	for _, c := range consumers {
		g.Go(func() error { return c.kafka.Run(gctx, c.handle) })
		if cfg.OnState != nil {
			cfg.OnState(ctx, c.p.Name(), "running", "consuming "+cfg.Topic+" as "+cfg.GroupID(c.p))
		}
	}
	err = g.Wait()
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
