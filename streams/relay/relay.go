package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/kafka"
)

// NotifyChannel is the channel the append function notifies on commit; the
// payload is the append's last position.
const NotifyChannel = "orderflow_events"

// Config configures a Relay. Zero values mean the documented defaults.
type Config struct {
	// Login opens the dedicated leadership/LISTEN connection, as the relay
	// role (advisory locks and LISTEN need no grants). Required.
	Login pg.Login
	// Pool reads events and writes the checkpoint (the relay role).
	// Required.
	Pool *pgxpool.Pool
	// Kafka is how the brokers are reached. Required.
	Kafka kafka.Config

	// Signer signs every message (streams/envelope), so that consumers can
	// tell the relay's messages from anything else produced to the topic.
	// Required unless Unsigned.
	Signer *envelope.Signer
	// Unsigned publishes messages without a signature, which verifying
	// consumers refuse: only for a topic whose every producer is trusted
	// (envelope.TrustAll on the consumers). Signer must then be nil.
	Unsigned bool

	// Topic receives every event. Default kafka.DefaultTopic. It also names the
	// checkpoint row and the leadership lock, so relays of different topics
	// are independent.
	Topic string
	// Partitions, ReplicationFactor and MinInsyncReplicas are used when the
	// relay has to create the topic, and checked against an existing one
	// (kafka.TopicSpec). Defaults 12, 1 and the broker's.
	Partitions        int
	ReplicationFactor int
	MinInsyncReplicas int

	// BatchSize bounds the events read and written at once. Default 1000.
	BatchSize int
	// BatchBytes bounds the bytes of one write call; it must not exceed the
	// broker's message.max.bytes. Default 1 MiB minus a margin.
	BatchBytes int64
	// PollInterval is the slow poll that covers lost notifications, and how
	// often the leader pings its connection. Default 1s.
	PollInterval time.Duration
	// FollowerRetry is how often a follower tries to take the lock.
	// Default 1s.
	FollowerRetry time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// failed writes (and failed reads). Defaults 100ms and 10s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// WriteTimeout bounds one produce request on the wire. Default 10s.
	WriteTimeout time.Duration

	// Registerer receives the relay's metrics. Nil means a private registry
	// (the metrics are then only visible through Status).
	Registerer prometheus.Registerer
	// Logger may be nil.
	Logger *slog.Logger
	// OnCheckpoint, if set, is called by the publisher right after the
	// checkpoint moved to position (every event up to it is acknowledged by
	// Kafka and the checkpoint is stored). It must return quickly. For
	// latency measurements and tests.
	OnCheckpoint func(position int64)
}

func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = kafka.DefaultTopic
	}
	if c.Partitions == 0 {
		c.Partitions = 12
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.BatchBytes == 0 {
		// Kafka's default message.max.bytes is 1048588; leave room for the
		// record batch header.
		c.BatchBytes = 1<<20 - 4096
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.FollowerRetry == 0 {
		c.FollowerRetry = time.Second
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// Validate reports every problem in c (after defaults).
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Login.URL == "" {
		errs = append(errs, errors.New("relay config: Login is required"))
	}
	if c.Pool == nil {
		errs = append(errs, errors.New("relay config: Pool is required"))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("relay config: %w", err))
	}
	switch {
	case c.Signer == nil && !c.Unsigned:
		errs = append(errs, errors.New("relay config: Signer is required (or Unsigned, for a trusted topic)"))
	case c.Signer != nil && c.Unsigned:
		errs = append(errs, errors.New("relay config: Signer and Unsigned exclude each other"))
	}
	if c.Partitions < 1 || c.ReplicationFactor < 1 || c.BatchSize < 1 || c.BatchBytes < 1 {
		errs = append(errs, errors.New("relay config: Partitions, ReplicationFactor, BatchSize and BatchBytes must be ≥ 1"))
	}
	if c.MinInsyncReplicas < 0 || c.MinInsyncReplicas > c.ReplicationFactor {
		errs = append(errs, errors.New("relay config: MinInsyncReplicas must be 0 (the broker's) to ReplicationFactor"))
	}
	if c.PollInterval < 0 || c.FollowerRetry < 0 || c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff || c.WriteTimeout < 0 {
		errs = append(errs, errors.New("relay config: durations must be positive and MaxBackoff ≥ MinBackoff"))
	}
	return errors.Join(errs...)
}

// Relay publishes the event store to Kafka. Create it with New, run it with
// Run; Status may be called at any time from any goroutine.
type Relay struct {
	cfg     Config
	store   *eventstore.Store
	log     *slog.Logger
	metrics *metrics

	mu     sync.Mutex
	status Status
	// running guards against two concurrent Runs of one Relay, which would
	// share one status and one set of metrics.
	running bool
}

// New checks cfg and registers the metrics. It connects to nothing.
func New(cfg Config) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Relay{
		cfg:     cfg,
		store:   eventstore.New(cfg.Pool),
		log:     cfg.Logger.With("component", "relay", "topic", cfg.Topic),
		metrics: m,
	}, nil
}

// Run takes part in the leader election and, while leader, publishes. It
// returns nil when ctx ends, after all its goroutines have exited.
func (r *Relay) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return errors.New("relay: Run called twice")
	}
	r.running = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
	}()
	r.sessions(ctx)
	return nil
}
