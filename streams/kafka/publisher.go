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

// Metadata keys and headers this package reads and writes.
const (
	// DefaultKeyMetadata is the metadata field whose value becomes the Kafka
	// key (the order id), so one order's events share a partition.
	DefaultKeyMetadata = "partition_key"
	// UUIDHeader carries the watermill message UUID (same header name as
	// watermill-kafka, so tools see one convention).
	UUIDHeader = "_watermill_message_uuid"
	// Set on consumed messages.
	MetadataTopic     = "kafka_topic"
	MetadataPartition = "kafka_partition"
	MetadataOffset    = "kafka_offset"
	MetadataTimestamp = "kafka_timestamp"
)

// ErrPublisherClosed is returned by Publish after Close.
var ErrPublisherClosed = errors.New("kafka publisher closed")

// PublisherConfig configures a Publisher. Zero values mean the documented
// defaults.
type PublisherConfig struct {
	Config
	// KeyMetadata names the metadata field used as the Kafka key.
	// Default DefaultKeyMetadata. A message without it gets no key and is
	// spread round-robin.
	KeyMetadata string
	// WriteTimeout bounds one produce request on the wire. Default 10s.
	WriteTimeout time.Duration
	// PublishTimeout bounds one whole Publish call, retries included.
	// Default 30s. The message's context can cut it shorter.
	PublishTimeout time.Duration
	// BatchTimeout is how long kafka-go waits to fill a batch before
	// sending it. Default 1ms: Publish is synchronous, so a long linger
	// is pure latency for the caller.
	BatchTimeout time.Duration
	// MaxAttempts is kafka-go's own attempts per batch for transient
	// broker errors. Default 3: longer retry policies (backoff across an
	// outage) belong to the caller, e.g. the relay.
	MaxAttempts int
	// MetadataTTL is how long cached cluster metadata is trusted. Default
	// 1s, so a topic created after the publisher started becomes visible
	// quickly.
	MetadataTTL time.Duration
	// UnknownTopicWait is how long Publish keeps retrying while the topic is
	// unknown to its (cached) metadata. Default 3s. The broker never
	// auto-creates topics, so a topic that stays unknown is an error.
	UnknownTopicWait time.Duration
}

func (c *PublisherConfig) setDefaults() {
	if c.KeyMetadata == "" {
		c.KeyMetadata = DefaultKeyMetadata
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 30 * time.Second
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = time.Millisecond
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.MetadataTTL == 0 {
		c.MetadataTTL = time.Second
	}
	if c.UnknownTopicWait == 0 {
		c.UnknownTopicWait = 3 * time.Second
	}
}

// Publisher is a watermill message.Publisher on a kafka-go Writer.
//
// Publish is synchronous: it returns nil only when every message has been
// acknowledged by all in-sync replicas (RequiredAcks=RequireAll, never
// Async). Messages of one Publish call that share a key keep their order.
// Keys are hashed to partitions with kafka.Hash (FNV-1a, Sarama's default,
// not the Java client's murmur2): every producer of a topic must use this
// Publisher or the same hash, or one order's events would split across
// partitions.
type Publisher struct {
	cfg    PublisherConfig
	w      *kafkago.Writer
	logger *slog.Logger

	mu     sync.RWMutex
	closed bool
}

// NewPublisher builds a Publisher. logger may be nil.
func NewPublisher(cfg PublisherConfig, logger *slog.Logger) (*Publisher, error) {
	cfg.setDefaults()
	tr, err := cfg.Transport()
	if err != nil {
		return nil, err
	}
	tr.MetadataTTL = cfg.MetadataTTL
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &kafkago.Writer{
		Addr:                   kafkago.TCP(cfg.Brokers...),
		Balancer:               &kafkago.Hash{},
		RequiredAcks:           kafkago.RequireAll,
		Async:                  false,
		AllowAutoTopicCreation: false,
		MaxAttempts:            cfg.MaxAttempts,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        time.Second,
		BatchTimeout:           cfg.BatchTimeout,
		WriteTimeout:           cfg.WriteTimeout,
		ReadTimeout:            cfg.WriteTimeout,
		Transport:              tr,
	}
	logger.Debug("kafka publisher created", "config", cfg.Config)
	return &Publisher{cfg: cfg, w: w, logger: logger}, nil
}

// Publish writes msgs to topic and waits for all of them to be acked.
// On error, some messages may have been written (at-least-once: the caller
// retries the whole call).
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrPublisherClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	ctx := msgs[0].Context()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()

	kms := make([]kafkago.Message, len(msgs))
	for i, m := range msgs {
		kms[i] = p.toKafka(topic, m)
	}
	deadline := time.Now().Add(p.cfg.UnknownTopicWait)
	for {
		err := p.w.WriteMessages(ctx, kms...)
		if err == nil {
			return nil
		}
		// Nothing was written when the topic is unknown, so retrying the
		// whole call duplicates nothing.
		if allUnknownTopic(err, len(kms)) && time.Now().Before(deadline) && sleepCtx(ctx, 100*time.Millisecond) {
			continue
		}
		var werrs kafkago.WriteErrors
		if errors.As(err, &werrs) {
			return fmt.Errorf("publish to %s: %d of %d messages failed: %w", topic, werrs.Count(), len(msgs), err)
		}
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
}

func allUnknownTopic(err error, n int) bool {
	var werrs kafkago.WriteErrors
	if !errors.As(err, &werrs) {
		return errors.Is(err, kafkago.UnknownTopicOrPartition)
	}
	if len(werrs) != n {
		return false
	}
	for _, e := range werrs {
		if !errors.Is(e, kafkago.UnknownTopicOrPartition) {
			return false
		}
	}
	return true
}

func (p *Publisher) toKafka(topic string, m *message.Message) kafkago.Message {
	headers := make([]kafkago.Header, 0, len(m.Metadata)+1)
	headers = append(headers, kafkago.Header{Key: UUIDHeader, Value: []byte(m.UUID)})
	for k, v := range m.Metadata {
		headers = append(headers, kafkago.Header{Key: k, Value: []byte(v)})
	}
	km := kafkago.Message{Topic: topic, Value: m.Payload, Headers: headers}
	if key := m.Metadata.Get(p.cfg.KeyMetadata); key != "" {
		km.Key = []byte(key)
	}
	return km
}

// Close waits for in-flight Publish calls, then closes the writer.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return p.w.Close()
}
