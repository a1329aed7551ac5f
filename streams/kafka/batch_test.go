package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/kafka"
)

// hangGuard bounds every wait: generous, since the machine may be starved;
// the tests synchronise on conditions, never on time.
const hangGuard = 60 * time.Second

func batchConfig(brokers []string, group, topic string) kafka.BatchConsumerConfig {
	return kafka.BatchConsumerConfig{
		Config:            kafka.Config{Brokers: brokers, ClientID: "orderflow-test"},
		GroupID:           group,
		Topic:             topic,
		HeartbeatInterval: 100 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  100 * time.Millisecond,
		MaxWait:           200 * time.Millisecond,
		RetryInitial:      10 * time.Millisecond,
		RetryMax:          50 * time.Millisecond,
	}
}

// runBatches runs a BatchConsumer until the test ends (or stop is called)
// and returns stop, which waits for Run to return.
func runBatches(t *testing.T, cfg kafka.BatchConsumerConfig, h kafka.BatchHandler) (c *kafka.BatchConsumer, stop func()) {
	t.Helper()
	c, err := kafka.NewBatchConsumer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("batch consumer: %v", err)
				}
			case <-time.After(hangGuard):
				t.Error("batch consumer did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return c, stop
}

// publishKeyed publishes perKey versions ("1", "2", ...) of each of keys
// keys, the versions of all keys interleaved.
func publishKeyed(t *testing.T, brokers []string, topic string, keys, perKey int) {
	t.Helper()
	pub := mustPublisher(t, brokers)
	var msgs []*message.Message
	for v := 1; v <= perKey; v++ {
		for k := range keys {
			m := message.NewMessage(fmt.Sprintf("k%d-v%d", k, v), []byte(strconv.Itoa(v)))
			m.Metadata.Set(kafka.DefaultKeyMetadata, fmt.Sprintf("order-%d", k))
			msgs = append(msgs, m)
		}
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after hangGuard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBatchConsumerHandsOverManyMessagesPerBatchInPartitionOrder(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	const topic, partitions, keys, perKey = "batch.order", 4, 16, 25
	testenv.CreateTopics(t, brokers, partitions, topic)
	publishKeyed(t, brokers, topic, keys, perKey)

	var (
		mu       sync.Mutex
		last     = map[string]int{}
		parts    = map[string]int{}
		total    int
		maxBatch int
		inFlight atomic.Int32
	)
	cfg := batchConfig(brokers, "batch-order", topic)
	cfg.MaxBatch, cfg.Linger = 50, 50*time.Millisecond
	runBatches(t, cfg, func(ctx context.Context, msgs []kafkago.Message) error {
		if inFlight.Add(1) != 1 {
			t.Error("two batches handed over at once")
		}
		defer inFlight.Add(-1)
		mu.Lock()
		defer mu.Unlock()
		if len(msgs) > cfg.MaxBatch {
			t.Errorf("batch of %d messages, MaxBatch %d", len(msgs), cfg.MaxBatch)
		}
		maxBatch = max(maxBatch, len(msgs))
		for _, m := range msgs {
			key := string(m.Key)
			v, _ := strconv.Atoi(string(m.Value))
			if v != last[key]+1 {
				t.Errorf("key %s: version %d after %d", key, v, last[key])
			}
			last[key] = v
			if p, ok := parts[key]; ok && p != m.Partition {
				t.Errorf("key %s on partitions %d and %d", key, p, m.Partition)
			}
			parts[key] = m.Partition
			total++
		}
		return nil
	})
	waitFor(t, "every message", func() bool { mu.Lock(); defer mu.Unlock(); return total >= keys*perKey })
	mu.Lock()
	defer mu.Unlock()
	if total != keys*perKey {
		t.Errorf("handled %d messages, want %d exactly once", total, keys*perKey)
	}
	if maxBatch < 2 {
		t.Errorf("largest batch %d: messages were handed over one at a time", maxBatch)
	}
}

func TestBatchConsumerCommitsByIntervalAndOnStopNotPerMessage(t *testing.T) {
	t.Parallel()
	broker := testenv.Broker(t)
	brokers := broker.Addrs()
	const topic, group, n = "batch.commit", "batch-commit", 300
	testenv.CreateTopics(t, brokers, 3, topic)
	var commits atomic.Int32
	broker.Cluster().ControlKey(kmsg.OffsetCommit.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if req.(*kmsg.OffsetCommitRequest).Group == group {
			commits.Add(1)
		}
		return nil, nil, false // only count: the broker handles it
	})
	publishKeyed(t, brokers, topic, 30, n/30)

	cfg := batchConfig(brokers, group, topic)
	cfg.MaxBatch, cfg.CommitInterval = 7, time.Hour // many batches, no tick during the test
	var handled atomic.Int32
	_, stop := runBatches(t, cfg, func(ctx context.Context, msgs []kafkago.Message) error {
		handled.Add(int32(len(msgs)))
		return nil
	})
	waitFor(t, "every message", func() bool { return handled.Load() >= n })
	stop()
	// One commit when the generation ends, for all three partitions; a
	// rebalance while joining could add one per extra generation.
	if c := commits.Load(); c < 1 || c > 3 {
		t.Errorf("%d OffsetCommit requests for %d messages in batches of at most 7: want one per generation", c, n)
	}

	// The last commit covered everything: a new member of the group starts
	// after the last message.
	publishKeyed(t, brokers, topic, 1, 1) // one new message: "1" of order-0
	var replayed atomic.Int32
	var got atomic.Value
	runBatches(t, cfg, func(ctx context.Context, msgs []kafkago.Message) error {
		replayed.Add(int32(len(msgs)))
		got.Store(string(msgs[0].Key) + "/" + string(msgs[0].Value))
		return nil
	})
	waitFor(t, "the new message", func() bool { return replayed.Load() >= 1 })
	if r := replayed.Load(); r != 1 {
		t.Errorf("restarted member handled %d messages, want only the new one (got %v)", r, got.Load())
	}
}

func TestBatchConsumerHandsAFailedBatchOverAgainAndNeverCommitsPastIt(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	const topic, group = "batch.retry", "batch-retry"
	testenv.CreateTopics(t, brokers, 1, topic)
	publishKeyed(t, brokers, topic, 1, 20) // versions 1..20 of one key

	cfg := batchConfig(brokers, group, topic)
	cfg.MaxBatch, cfg.CommitInterval = 5, 10*time.Millisecond
	var (
		mu         sync.Mutex
		attempts   = map[int]int{} // first version of a batch → attempts
		applied    []int
		stuckFirst int // first version of the batch holding 11, once it failed thrice
	)
	// The batch holding version 3 succeeds on its third attempt; the batch
	// holding 11 always fails. Batch boundaries depend on how fast the
	// reader fetches; a retried batch keeps its messages.
	_, stop := runBatches(t, cfg, func(ctx context.Context, msgs []kafkago.Message) error {
		mu.Lock()
		defer mu.Unlock()
		first, _ := strconv.Atoi(string(msgs[0].Value))
		attempts[first]++
		var vs []int
		for _, m := range msgs {
			v, _ := strconv.Atoi(string(m.Value))
			vs = append(vs, v)
			if v == 3 && attempts[first] < 3 {
				return errors.New("transient")
			}
			if v == 11 {
				if attempts[first] >= 3 {
					stuckFirst = first
				}
				return errors.New("stuck")
			}
		}
		applied = append(applied, vs...)
		return nil
	})
	waitFor(t, "the stuck batch retried", func() bool { mu.Lock(); defer mu.Unlock(); return stuckFirst > 0 })
	stop()
	mu.Lock()
	want := stuckFirst - 1
	if len(applied) != want {
		t.Errorf("applied %v: want 1..%d", applied, want)
	}
	for i, v := range applied {
		if v != i+1 {
			t.Fatalf("applied %v: want 1..%d once each, in order", applied, want)
		}
	}
	mu.Unlock()

	// Nothing from the stuck batch on was committed: a new member starts
	// at its first message.
	var next atomic.Value
	runBatches(t, cfg, func(ctx context.Context, msgs []kafkago.Message) error {
		if next.Load() == nil {
			next.Store(string(msgs[0].Value))
		}
		return nil
	})
	waitFor(t, "the restarted member's first batch", func() bool { return next.Load() != nil })
	if v := next.Load().(string); v != strconv.Itoa(stuckFirst) {
		t.Errorf("restarted member began at version %s, want %d (the first one never handled)", v, stuckFirst)
	}
}

func TestBatchConsumerReportsItsLagUntilCaughtUp(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	const topic, n = "batch.lag", 60
	testenv.CreateTopics(t, brokers, 2, topic)
	publishKeyed(t, brokers, topic, 6, n/6)

	release := make(chan struct{})
	var handled atomic.Int32
	cfg := batchConfig(brokers, "batch-lag", topic)
	cfg.MaxBatch = 5
	c, _ := runBatches(t, cfg, func(ctx context.Context, msgs []kafkago.Message) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		handled.Add(int32(len(msgs)))
		return nil
	})
	waitFor(t, "a lag while the handler is held", func() bool {
		l := c.Lag(time.Now())
		return l.Events > 0 && l.Oldest > 0
	})
	if l := c.Lag(time.Now()); l.Events > n {
		t.Errorf("lag %d events, but only %d were published", l.Events, n)
	}
	close(release)
	waitFor(t, "every message handled", func() bool { return handled.Load() >= n })
	waitFor(t, "no lag", func() bool { return c.Lag(time.Now()) == kafka.Lag{} })
}

func TestBatchConsumerLetsTheBatchInFlightAtStopFinishAndCommitsIt(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	const topic, group = "batch.stop", "batch-stop"
	testenv.CreateTopics(t, brokers, 1, topic)
	publishKeyed(t, brokers, topic, 1, 5) // versions 1..5 of one key

	cfg := batchConfig(brokers, group, topic)
	cfg.CommitInterval = time.Hour // only the last commit
	c, err := kafka.NewBatchConsumer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	entered, release := make(chan struct{}), make(chan struct{})
	var last atomic.Value
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(hctx context.Context, msgs []kafkago.Message) error {
			if last.Load() == nil {
				close(entered)
				<-release
			}
			// What a projector's commit needs: a live context.
			if err := hctx.Err(); err != nil {
				return err
			}
			last.Store(string(msgs[len(msgs)-1].Value))
			return nil
		})
	}()
	select {
	case <-entered:
	case <-time.After(hangGuard):
		t.Fatal("no batch handed over")
	}
	cancel() // the consumer stops with the batch in the handler
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("Run did not return")
	}
	if last.Load() == nil {
		t.Fatal("the batch in flight at stop failed: its context was cancelled under it")
	}

	// Its offsets were committed: the next member starts after it (at
	// the version after its last, or at the new "1" if it held all five).
	ended, _ := strconv.Atoi(last.Load().(string))
	want := strconv.Itoa(ended%5 + 1)
	var first atomic.Value
	runBatches(t, cfg, func(ctx context.Context, msgs []kafkago.Message) error {
		first.CompareAndSwap(nil, string(msgs[0].Value))
		return nil
	})
	publishKeyed(t, brokers, topic, 1, 1)
	waitFor(t, "the next member's first batch", func() bool { return first.Load() != nil })
	if v := first.Load().(string); v != want {
		t.Errorf("the batch in flight at stop ended at version %d; the next member began at %q, want %q", ended, v, want)
	}
}
