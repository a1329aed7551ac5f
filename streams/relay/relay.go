package relay

// DESIGN
//
// Goroutines. Run owns one loop, the session loop (leader.go). It opens a
// dedicated pgx.Conn (not from the pool: a session advisory lock belongs to
// a connection), and tries pg_try_advisory_lock every FollowerRetry until it
// wins. The winner LISTENs on orderflow_events on that same connection and
// starts exactly one publisher goroutine (publish.go) with a leader context.
// The session loop then only waits for notifications (forwarding each as a
// wake-up) and pings the connection every PollInterval. When the connection
// fails it cancels the leader context (fencing the publisher at once); when
// Run's ctx ends it first lets the publisher drain — finish the write in
// flight and store its checkpoint, WriteTimeout at most — so that a clean
// shutdown leaves nothing acknowledged but unrecorded for the next leader
// to send again. Then it waits for the publisher, closes the connection
// (the server drops the lock with it) and, unless ctx ended, goes back to
// being a follower. So at most two goroutines
// run per relay, and Run returns only after both have exited.
//
// Leadership and fencing. Leadership is the lock's session. A leader whose
// connection dies stops publishing at once: its in-flight write is
// cancelled with the leader context. Another process can take over as soon
// as the server has noticed the dead session (immediately after a process
// crash, as the kernel closes the socket). A stale leader cannot corrupt the
// checkpoint: checkpoint updates are monotonic and only ever record
// positions Kafka acknowledged.
//
// Delivery guarantee: at least once. The checkpoint advances only after
// Kafka acknowledged (acks=all) every message up to it, so nothing committed
// is ever skipped. Duplicates appear only after a crash or failover (the
// messages between the last checkpoint and the crash are sent again), after
// a write whose acknowledgement was lost (timeout, cut connection), or after
// the fresh-topic reset. Consumers dedupe by (stream id, version).
//
// Ordering argument. (1) Store.ReadAll returns events in position order and
// is gap-safe, and one stream's versions take increasing positions, so the
// publisher sees each stream's versions in order. (2) The key is the stream
// id and the balancer is Hash, so one stream maps to one partition.
// (3) The publisher has one write in flight at a time and never reads the
// next batch before the current one is fully acknowledged. (4) A write call
// carries at most BatchBytes, and the writer's BatchSize and BatchBytes are
// at least the call's, so kafka-go puts each partition's share of a call in
// one produce batch: a partition's share succeeds or fails as a whole
// (kafka.WriteErrors). Retrying only the failed messages therefore resends
// whole partition batches, in their order, before anything newer goes to
// those partitions. A lost acknowledgement can produce "v1 v2 v1 v2" in a
// partition, never "v2 v1".

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
	"github.com/orderflow/orderflow/streams/kafka"
)

// DefaultTopic is the topic every committed event is published to.
const DefaultTopic = "orders.events"

// NotifyChannel is the channel the append function notifies on commit; the
// payload is the append's last position.
const NotifyChannel = "orderflow_events"

// Config configures a Relay. Zero values mean the documented defaults.
type Config struct {
	// DatabaseURL opens the dedicated leadership/LISTEN connection. Required.
	// The connection switches to the application role.
	DatabaseURL string
	// Pool reads events and writes the checkpoint (application role).
	// Required.
	Pool *pgxpool.Pool
	// Kafka is how the brokers are reached. Required.
	Kafka kafka.Config

	// Topic receives every event. Default DefaultTopic. It also names the
	// checkpoint row and the leadership lock, so relays of different topics
	// are independent.
	Topic string
	// Partitions and ReplicationFactor are used only when the relay has to
	// create the topic. Defaults 12 and 1.
	Partitions        int
	ReplicationFactor int

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
		c.Topic = DefaultTopic
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
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("relay config: DatabaseURL is required"))
	}
	if c.Pool == nil {
		errs = append(errs, errors.New("relay config: Pool is required"))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("relay config: %w", err))
	}
	if c.Partitions < 1 || c.ReplicationFactor < 1 || c.BatchSize < 1 || c.BatchBytes < 1 {
		errs = append(errs, errors.New("relay config: Partitions, ReplicationFactor, BatchSize and BatchBytes must be ≥ 1"))
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
