package kafka

import (
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// BatchConsumerConfig configures a BatchConsumer. Zero values mean the
// documented defaults.
type BatchConsumerConfig struct {
	Config
	// GroupID is the consumer group. Required.
	GroupID string
	// Topic is the topic read. Required.
	Topic string
	// StartOffset is where a partition without a committed offset starts:
	// FirstOffset (default) or LastOffset.
	StartOffset int64
	// MaxBatch bounds a batch, in messages, and the queue between the
	// partitions' readers and the handler. Default 1000.
	MaxBatch int
	// Linger is how long a batch waits to fill after its first message.
	// Default 10ms; negative means no wait (a batch is what was already
	// fetched). Under load a batch is full before the linger ends; at
	// moderate rates it trades that much latency for fewer, larger batches
	// (each costs the handler a fixed amount: for the projector, three round
	// trips and a commit).
	Linger time.Duration
	// CommitInterval is how often the offsets of handled batches are
	// committed: one request for all of the member's partitions. Default
	// 1s. A crash replays at most what was handled since the last commit.
	CommitInterval time.Duration
	// RetryInitial and RetryMax space the redeliveries of a batch whose
	// handler failed: RetryInitial, doubling up to RetryMax. Defaults
	// 100ms and 5s.
	RetryInitial, RetryMax time.Duration
	// KeyMetadata names the metadata field Message copies the Kafka key
	// into. Default DefaultKeyMetadata.
	KeyMetadata string
	// MaxWait is the longest a fetch waits on the broker for new data; it
	// also bounds how long shutdown waits for an idle fetch. Default 500ms.
	MaxWait time.Duration
	// Consumer group timings; defaults are kafka-go's (3s, 30s, 30s, 5s).
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	JoinGroupBackoff  time.Duration
}

func (c *BatchConsumerConfig) setDefaults() {
	if c.StartOffset == 0 {
		c.StartOffset = kafkago.FirstOffset
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 1000
	}
	if c.Linger == 0 {
		c.Linger = 10 * time.Millisecond
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = 100 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.KeyMetadata == "" {
		c.KeyMetadata = DefaultKeyMetadata
	}
	if c.MaxWait == 0 {
		c.MaxWait = 500 * time.Millisecond
	}
}

// Validate checks c after defaults.
func (c BatchConsumerConfig) Validate() error {
	c.setDefaults()
	errs := []error{c.Config.Validate()}
	if c.GroupID == "" || c.Topic == "" {
		errs = append(errs, errors.New("kafka batch consumer: GroupID and Topic are required"))
	}
	if c.StartOffset != kafkago.FirstOffset && c.StartOffset != kafkago.LastOffset {
		errs = append(errs, fmt.Errorf("kafka batch consumer: StartOffset %d is neither FirstOffset nor LastOffset", c.StartOffset))
	}
	if c.MaxBatch < 1 || c.CommitInterval < 0 || c.RetryInitial < 0 || c.RetryMax < c.RetryInitial {
		errs = append(errs, errors.New("kafka batch consumer: MaxBatch must be >= 1, CommitInterval and RetryInitial >= 0, RetryMax >= RetryInitial"))
	}
	return errors.Join(errs...)
}
