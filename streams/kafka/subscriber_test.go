package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/kafka"
)

func TestSubscriberKeepsPerKeyOrderAcrossPartitions(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	const topic, partitions, keys, perKey = "orders.events", 4, 16, 25
	testenv.CreateTopics(t, brokers, partitions, topic)
	pub := mustPublisher(t, brokers)

	var batch []*message.Message
	for v := 1; v <= perKey; v++ {
		for k := range keys {
			m := message.NewMessage(fmt.Sprintf("k%d-v%d", k, v), []byte(strconv.Itoa(v)))
			m.Metadata.Set(kafka.DefaultKeyMetadata, fmt.Sprintf("order-%d", k))
			batch = append(batch, m)
		}
	}
	if err := pub.Publish(topic, batch...); err != nil {
		t.Fatal(err)
	}

	sub := mustSubscriber(t, testSubscriberConfig(brokers, "order-test", 1))
	ch := subscribe(t, sub, topic)

	var (
		mu       sync.Mutex
		last     = map[string]int{}
		parts    = map[string]map[string]bool{} // key → partitions seen
		inflight atomic.Int32
		maxIn    atomic.Int32
		wg       sync.WaitGroup
		// overlap is closed once two messages were in flight at once. Until
		// then a handler holds its message (so its partition waits), which
		// makes the concurrency check independent of how fast the machine
		// is: another partition's message must arrive meanwhile.
		overlap     = make(chan struct{})
		overlapOnce sync.Once
	)
	for range keys * perKey {
		m := receive(t, ch, 20*time.Second)
		wg.Add(1)
		// Handle each message on its own goroutine: the subscriber, not the
		// caller, must keep one key's messages in order.
		go func() {
			defer wg.Done()
			n := inflight.Add(1)
			for cur := maxIn.Load(); n > cur && !maxIn.CompareAndSwap(cur, n); cur = maxIn.Load() {
			}
			if n >= 2 {
				overlapOnce.Do(func() { close(overlap) })
			}
			select {
			case <-overlap:
			case <-time.After(30 * time.Second):
			}
			key := m.Metadata.Get(kafka.DefaultKeyMetadata)
			v, _ := strconv.Atoi(string(m.Payload))
			mu.Lock()
			if v != last[key]+1 {
				t.Errorf("key %s: got version %d after %d", key, v, last[key])
			}
			last[key] = v
			if parts[key] == nil {
				parts[key] = map[string]bool{}
			}
			parts[key][m.Metadata.Get(kafka.MetadataPartition)] = true
			mu.Unlock()
			inflight.Add(-1)
			m.Ack()
		}()
	}
	wg.Wait()
	for k, ps := range parts {
		if len(ps) != 1 {
			t.Errorf("key %s spread over partitions %v", k, ps)
		}
	}
	if maxIn.Load() < 2 {
		t.Errorf("partitions were not processed concurrently (max in flight %d)", maxIn.Load())
	}
}

func TestSubscriberCommitsOnlyAckedAndRedeliversNacked(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	const topic = "commit.test"
	testenv.CreateTopics(t, brokers, 1, topic)
	pub := mustPublisher(t, brokers)
	var ids []string
	for i := range 3 {
		m := message.NewMessage(fmt.Sprintf("00000000-0000-0000-0000-00000000000%d", i), []byte{byte('a' + i)})
		m.Metadata.Set(kafka.DefaultKeyMetadata, "order-1")
		m.Metadata.Set("event_type", "OrderPlaced")
		ids = append(ids, m.UUID)
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}

	cfg := testSubscriberConfig(brokers, "commit-group", 1)
	first, err := kafka.NewSubscriber(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := subscribe(t, first, topic)
	m0 := receive(t, ch, 20*time.Second)
	if m0.UUID != ids[0] || m0.Metadata.Get("event_type") != "OrderPlaced" ||
		m0.Metadata.Get(kafka.DefaultKeyMetadata) != "order-1" ||
		m0.Metadata.Get(kafka.MetadataPartition) != "0" || m0.Metadata.Get(kafka.MetadataOffset) != "0" {
		t.Fatalf("first message = %s %v", m0.UUID, m0.Metadata)
	}
	m0.Ack()
	m1 := receive(t, ch, 10*time.Second)
	if m1.UUID != ids[1] {
		t.Fatalf("second message = %s", m1.UUID)
	}
	m1.Nack()
	again := receive(t, ch, 10*time.Second)
	if again.UUID != ids[1] || string(again.Payload) != "b" {
		t.Fatalf("after Nack got %s, want %s redelivered", again.UUID, ids[1])
	}
	// Not acked: the group's committed offset must stay at 1.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel still open after Close")
	}

	second := mustSubscriber(t, cfg)
	m := receive(t, subscribe(t, second, topic), 20*time.Second)
	if m.UUID != ids[1] {
		t.Fatalf("restarted consumer began at %s, want the un-acked %s", m.UUID, ids[1])
	}
	m.Ack()
}

func TestSubscriberWithoutGroupReadsEverythingFromConfiguredOffset(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	const topic = "hub.test"
	testenv.CreateTopics(t, brokers, 3, topic)
	pub := mustPublisher(t, brokers)
	for i := range 6 {
		m := message.NewMessage(fmt.Sprintf("old-%d", i), []byte("old"))
		m.Metadata.Set(kafka.DefaultKeyMetadata, fmt.Sprintf("o%d", i))
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}

	fromStart := testSubscriberConfig(brokers, "", 1)
	fromEnd := fromStart
	fromEnd.StartOffset = kafka.LastOffset
	a := subscribe(t, mustSubscriber(t, fromStart), topic)
	b := subscribe(t, mustSubscriber(t, fromStart), topic)
	tail := subscribe(t, mustSubscriber(t, fromEnd), topic)

	for name, ch := range map[string]<-chan *message.Message{"a": a, "b": b} {
		seen := map[string]bool{}
		for range 6 {
			m := receive(t, ch, 20*time.Second)
			seen[m.UUID] = true
			m.Ack()
		}
		if len(seen) != 6 {
			t.Errorf("node %s saw %d distinct old messages, want all 6", name, len(seen))
		}
	}
	// The tail reader resolves LastOffset at some moment after Subscribe:
	// publish new messages until one arrives. Whatever it receives first
	// must be new, never one of the six old ones.
	deadline := time.Now().Add(time.Minute)
	for i := 0; ; i++ {
		if err := pub.Publish(topic, message.NewMessage(fmt.Sprintf("new-%d", i), []byte("new"))); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-tail:
			if !strings.HasPrefix(m.UUID, "new-") {
				t.Fatalf("LastOffset reader got %s, want only new messages", m.UUID)
			}
			m.Ack()
			return
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the LastOffset reader received nothing within a minute of new messages")
		}
	}
}

func TestSubscriberRecoversFromBrokerOutage(t *testing.T) {
	t.Parallel()
	broker := testenv.Broker(t)
	brokers := broker.Addrs()
	const topic = "outage.test"
	testenv.CreateTopics(t, brokers, 2, topic)
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Config:         kafka.Config{Brokers: brokers},
		PublishTimeout: 2 * time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	sub := mustSubscriber(t, testSubscriberConfig(brokers, "outage-group", 1))
	ch := subscribe(t, sub, topic)

	publish := func(id string) {
		t.Helper()
		m := message.NewMessage(id, []byte(id))
		m.Metadata.Set(kafka.DefaultKeyMetadata, id)
		// The caller's retry loop (the relay's job in production).
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := pub.Publish(topic, m)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("publish %s: %v", id, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	publish("before")
	m := receive(t, ch, 20*time.Second)
	m.Ack()

	const outage = 3 * time.Second
	broker.Pause()
	start := time.Now()
	if err := pub.Publish(topic, message.NewMessage("during", nil)); err == nil {
		t.Fatal("publish succeeded while the broker was down")
	}
	// Bounded by PublishTimeout (2 s); 30 s only tells "bounded" from "hung"
	// on a machine busy with other tests.
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("publish during outage took %s, want it bounded by PublishTimeout", d)
	}
	time.Sleep(time.Until(start.Add(outage)))
	if err := broker.Resume(); err != nil {
		t.Fatal(err)
	}

	want := map[string]bool{}
	for i := range 5 {
		id := fmt.Sprintf("after-%d", i)
		publish(id)
		want[id] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	for len(want) > 0 {
		select {
		case m := <-ch:
			delete(want, m.UUID)
			m.Ack()
		case <-ctx.Done():
			t.Fatalf("after the outage, never received %v", want)
		}
	}
}
