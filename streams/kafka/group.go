package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"
)

// What the Subscriber and the BatchConsumer share: joining a consumer
// group, reading one partition, and turning a Kafka message into a
// watermill one.

// groupTimings are a consumer group member's timings; zero means kafka-go's
// defaults (3s, 30s, 30s, 5s).
type groupTimings struct {
	heartbeat, session, rebalance, joinBackoff time.Duration
}

func newConsumerGroup(cfg Config, dialer *kafkago.Dialer, id, topic string, startOffset int64, t groupTimings, log *slog.Logger) (*kafkago.ConsumerGroup, error) {
	return kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                    id,
		Brokers:               cfg.Brokers,
		Dialer:                dialer,
		Topics:                []string{topic},
		HeartbeatInterval:     t.heartbeat,
		SessionTimeout:        t.session,
		RebalanceTimeout:      t.rebalance,
		JoinGroupBackoff:      t.joinBackoff,
		WatchPartitionChanges: true,
		StartOffset:           startOffset,
		Timeout:               5 * time.Second,
		ErrorLogger:           kafkago.LoggerFunc(func(f string, a ...any) { log.Debug("kafka-go group: " + fmt.Sprintf(f, a...)) }),
	})
}

// nextGeneration waits for the group's next generation; false once ctx
// ended or the group was closed.
func nextGeneration(ctx context.Context, cg *kafkago.ConsumerGroup, log *slog.Logger) (*kafkago.Generation, bool) {
	for {
		gen, err := cg.Next(ctx)
		if err == nil {
			return gen, true
		}
		if ctx.Err() != nil || errors.Is(err, kafkago.ErrGroupClosed) {
			return nil, false
		}
		lvl := slog.LevelWarn
		if errors.Is(err, kafkago.RebalanceInProgress) {
			lvl = slog.LevelDebug
		}
		log.Log(ctx, lvl, "consumer group: next generation failed, retrying", "err", err)
		// cg retries with JoinGroupBackoff itself; this only keeps a
		// fast-failing error from spinning.
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return nil, false
		}
	}
}

// newPartitionReader reads one partition, with no group on the Reader (the
// caller commits through its generation). kafka-go's reader fetches ahead
// into a queue of queueCapacity messages (0: kafka-go's 100) and blocks
// when it is full.
func newPartitionReader(cfg Config, dialer *kafkago.Dialer, topic string, partition int, maxWait time.Duration, queueCapacity int, log *slog.Logger) *kafkago.Reader {
	return kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:         cfg.Brokers,
		Topic:           topic,
		Partition:       partition,
		Dialer:          dialer,
		QueueCapacity:   queueCapacity,
		MinBytes:        1,
		MaxBytes:        10 << 20,
		MaxWait:         maxWait,
		ReadLagInterval: -1,
		ReadBackoffMin:  50 * time.Millisecond,
		ReadBackoffMax:  time.Second,
		ErrorLogger:     kafkago.LoggerFunc(func(f string, a ...any) { log.Debug("kafka-go reader: " + fmt.Sprintf(f, a...)) }),
	})
}

// toMessage is km as a watermill message: headers become metadata (the
// watermill UUID header becomes the UUID), the key goes to keyMetadata, and
// where it came from to MetadataTopic, MetadataPartition, MetadataOffset and
// MetadataTimestamp.
func toMessage(km kafkago.Message, keyMetadata string) *message.Message {
	md := make(message.Metadata, len(km.Headers)+5)
	id := ""
	for _, h := range km.Headers {
		if h.Key == UUIDHeader {
			id = string(h.Value)
			continue
		}
		md[h.Key] = string(h.Value)
	}
	if id == "" { // produced by something else than our Publisher
		id = watermill.NewUUID()
	}
	if len(km.Key) > 0 {
		md[keyMetadata] = string(km.Key)
	}
	md[MetadataTopic] = km.Topic
	md[MetadataPartition] = strconv.Itoa(km.Partition)
	md[MetadataOffset] = strconv.FormatInt(km.Offset, 10)
	md[MetadataTimestamp] = km.Time.UTC().Format(time.RFC3339Nano)
	msg := message.NewMessage(id, km.Value)
	msg.Metadata = md
	return msg
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
