package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"
)

// Start offsets for SubscriberConfig.StartOffset (kafka-go's values).
const (
	FirstOffset = kafkago.FirstOffset
	LastOffset  = kafkago.LastOffset
)

// ErrSubscriberClosed is returned by Subscribe after Close.
var ErrSubscriberClosed = errors.New("kafka subscriber closed")

// SubscriberConfig configures a Subscriber. Zero values mean the documented
// defaults.
type SubscriberConfig struct {
	Config
	// GroupID is the consumer group. Empty means no group: every partition
	// is read from StartOffset and nothing is committed.
	GroupID string
	// StartOffset is where reading starts when the group has no committed
	// offset (or always, without a group): FirstOffset (default) or
	// LastOffset.
	StartOffset int64
	// KeyMetadata names the metadata field the Kafka key is copied into.
	// Default DefaultKeyMetadata.
	KeyMetadata string
	// NackResendSleep is the pause before a Nacked message is delivered
	// again. Default 100ms; negative means no pause.
	NackResendSleep time.Duration
	// MaxWait is the longest a fetch waits on the broker for new data; it
	// also bounds how long shutdown waits for an idle fetch. Default 500ms.
	MaxWait time.Duration
	// Consumer group timings; defaults are kafka-go's (3s, 30s, 30s, 5s).
	// Tests lower HeartbeatInterval so rebalances are noticed quickly.
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	JoinGroupBackoff  time.Duration
	// InitPartitions and InitReplicationFactor shape the topics
	// SubscribeInitialize creates. Default 1 and 1.
	InitPartitions        int
	InitReplicationFactor int
}

func (c *SubscriberConfig) setDefaults() {
	if c.StartOffset == 0 {
		c.StartOffset = kafkago.FirstOffset
	}
	if c.KeyMetadata == "" {
		c.KeyMetadata = DefaultKeyMetadata
	}
	if c.NackResendSleep == 0 {
		c.NackResendSleep = 100 * time.Millisecond
	}
	if c.MaxWait == 0 {
		c.MaxWait = 500 * time.Millisecond
	}
	if c.InitPartitions == 0 {
		c.InitPartitions = 1
	}
	if c.InitReplicationFactor == 0 {
		c.InitReplicationFactor = 1
	}
}

// Validate checks c after defaults.
func (c SubscriberConfig) Validate() error {
	c.setDefaults()
	var errs []error
	errs = append(errs, c.Config.Validate())
	if c.StartOffset != kafkago.FirstOffset && c.StartOffset != kafkago.LastOffset {
		errs = append(errs, fmt.Errorf("kafka subscriber: StartOffset %d is neither FirstOffset nor LastOffset", c.StartOffset))
	}
	if c.InitPartitions < 1 || c.InitReplicationFactor < 1 {
		errs = append(errs, errors.New("kafka subscriber: InitPartitions and InitReplicationFactor must be >= 1"))
	}
	return errors.Join(errs...)
}

// Subscriber is a watermill message.Subscriber on kafka-go, delivering one
// message per partition at a time; see DESIGN.md.
type Subscriber struct {
	cfg    SubscriberConfig
	dialer *kafkago.Dialer
	tr     *kafkago.Transport
	logger *slog.Logger

	closing   chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex // guards closed and wg.Add against Close
	closed    bool
	wg        sync.WaitGroup
}

// NewSubscriber builds a Subscriber. logger may be nil.
func NewSubscriber(cfg SubscriberConfig, logger *slog.Logger) (*Subscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dialer, err := cfg.Dialer()
	if err != nil {
		return nil, err
	}
	tr, err := cfg.Transport()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "kafka_subscriber", "group", cfg.GroupID)
	return &Subscriber{cfg: cfg, dialer: dialer, tr: tr, logger: logger, closing: make(chan struct{})}, nil
}

// SubscribeInitialize creates topic (InitPartitions, InitReplicationFactor)
// if it does not exist, since the broker never auto-creates topics.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return EnsureTopics(ctx, s.cfg.Config, TopicSpec{
		Name: topic, Partitions: s.cfg.InitPartitions, ReplicationFactor: s.cfg.InitReplicationFactor,
	})
}

// Subscribe starts consuming topic. The channel is closed when ctx is
// cancelled or the Subscriber is closed, after all of this subscription's
// goroutines have exited.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrSubscriberClosed
	}
	subCtx, cancel := context.WithCancel(ctx)
	out := make(chan *message.Message)
	log := s.logger.With("topic", topic)

	if s.cfg.GroupID == "" {
		parts, err := topicPartitions(ctx, s.cfg.Config, s.dialer, topic)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("subscribe %s: %w", topic, err)
		}
		var loops sync.WaitGroup
		for _, p := range parts {
			loops.Go(func() {
				s.consumePartition(subCtx, log, topic, p, s.cfg.StartOffset, nil, out)
			})
		}
		s.wg.Go(func() {
			select {
			case <-subCtx.Done():
			case <-s.closing:
				cancel()
			}
			loops.Wait()
			close(out)
		})
		return out, nil
	}

	cg, err := newConsumerGroup(s.cfg.Config, s.dialer, s.cfg.GroupID, topic, s.cfg.StartOffset, groupTimings{
		heartbeat: s.cfg.HeartbeatInterval, session: s.cfg.SessionTimeout,
		rebalance: s.cfg.RebalanceTimeout, joinBackoff: s.cfg.JoinGroupBackoff,
	}, log)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe %s: %w", topic, err)
	}
	groupDone := make(chan struct{})
	s.wg.Go(func() { // watcher
		select {
		case <-subCtx.Done():
		case <-s.closing:
			cancel()
		}
		// Ends the generation, waits for the partition loops, leaves.
		_ = cg.Close()
		<-groupDone
		close(out)
	})
	s.wg.Go(func() { // group loop
		defer close(groupDone)
		s.runGroup(subCtx, log, cg, topic, out)
	})
	return out, nil
}

func (s *Subscriber) runGroup(ctx context.Context, log *slog.Logger, cg *kafkago.ConsumerGroup, topic string, out chan<- *message.Message) {
	for {
		gen, ok := nextGeneration(ctx, cg, log)
		if !ok {
			return
		}
		log.Debug("consumer group: generation started", "generation", gen.ID, "assignments", len(gen.Assignments[topic]))
		for _, pa := range gen.Assignments[topic] {
			gen.Start(func(genCtx context.Context) {
				pctx, cancel := context.WithCancel(ctx)
				defer cancel()
				stop := context.AfterFunc(genCtx, cancel)
				defer stop()
				commit := func(next int64) error {
					return gen.CommitOffsets(map[string]map[int]int64{topic: {pa.ID: next}})
				}
				s.consumePartition(pctx, log, topic, pa.ID, pa.Offset, commit, out)
			})
		}
	}
}

// consumePartition delivers one partition in order, one message at a time.
// commit is nil without a consumer group.
func (s *Subscriber) consumePartition(ctx context.Context, log *slog.Logger, topic string, partition int, offset int64,
	commit func(next int64) error, out chan<- *message.Message) {
	log = log.With("partition", partition)
	r := newPartitionReader(s.cfg.Config, s.dialer, topic, partition, s.cfg.MaxWait, 0, log)
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(offset); err != nil {
		log.Error("set offset", "offset", offset, "err", err)
		return
	}

	pending := int64(-1) // acked but not yet committed "next offset"
	flush := func() {
		if commit == nil || pending < 0 {
			return
		}
		if err := commit(pending); err != nil {
			log.Warn("commit failed; will retry", "offset", pending, "err", err)
			return
		}
		pending = -1
	}
	defer flush()

	for {
		km, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("fetch failed", "err", err)
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return
			}
			continue
		}
		if !s.deliver(ctx, km, out) {
			return
		}
		pending = km.Offset + 1
		flush()
	}
}

// deliver hands km to out until it is Acked (true) or ctx ends (false).
//
// A message already handed out is let finish when ctx ends (shutdown or a
// revoked partition): its context stays live for up to drainTimeout, and
// an Ack within it counts, so the loop commits it. Cancelling it instead
// would abandon work that usually commits a moment later, and every such
// message would be delivered again after the restart.
func (s *Subscriber) deliver(ctx context.Context, km kafkago.Message, out chan<- *message.Message) bool {
	for {
		msg := toMessage(km, s.cfg.KeyMetadata)
		mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		msg.SetContext(mctx)
		select {
		case out <- msg:
		case <-ctx.Done():
			cancel()
			return false
		}
		select {
		case <-msg.Acked():
			cancel()
			return true
		case <-msg.Nacked():
			cancel()
			if !sleepCtx(ctx, s.cfg.NackResendSleep) {
				return false
			}
		case <-ctx.Done():
			defer cancel()
			select {
			case <-msg.Acked():
				return true
			case <-msg.Nacked():
			case <-time.After(drainTimeout):
			}
			return false
		}
	}
}

// drainTimeout bounds how long a message (Subscriber) or a batch
// (BatchConsumer) handed out before shutdown or a rebalance may still take
// to be acked or handled, and then committed. Well below a rebalance
// timeout: the group waits for it before the next generation.
const drainTimeout = 5 * time.Second

// Close stops every subscription, waits for all goroutines (final commits
// included) and closes every output channel.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()
	s.tr.CloseIdleConnections()
	return nil
}
