package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/streams/kafka"
)

// The events topic of an environment's broker, and its partition count.
const (
	Topic      = kafka.DefaultTopic
	Partitions = 8
)

// Broker starts a broker of its own (kfake over TCP on a free 127.0.0.1
// port), closed when the test ends. Topics are never auto-created: use
// CreateTopics. Tests of outages Pause and Resume it.
func Broker(t testing.TB) *kafka.Broker {
	t.Helper()
	b, err := kafka.NewBroker("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("testenv: start broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// CreateTopics creates topics with the given partition count and
// replication factor 1.
func CreateTopics(t testing.TB, brokers []string, partitions int, topics ...string) {
	t.Helper()
	specs := make([]kafka.TopicSpec, 0, len(topics))
	for _, name := range topics {
		specs = append(specs, kafka.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, kafka.Config{Brokers: brokers}, specs...); err != nil {
		t.Fatalf("testenv: create topics: %v", err)
	}
}

// Kafka returns the bootstrap addresses of the environment's broker,
// starting it on first use with Topic (Partitions partitions) and its DLQ.
func (e *Env) Kafka(t testing.TB) []string {
	t.Helper()
	return e.KafkaBroker(t).Addrs()
}

// KafkaBroker is Kafka returning the broker itself.
func (e *Env) KafkaBroker(t testing.TB) *kafka.Broker {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.broker == nil {
		e.broker = Broker(t)
		CreateTopics(t, e.broker.Addrs(), Partitions, Topic)
		CreateTopics(t, e.broker.Addrs(), 1, kafka.DefaultDLQTopic)
	}
	return e.broker
}

// KafkaProcess is `orderflow kafka`: the broker in a process of its own, so
// that a test can kill, pause or restart it apart from the serve processes
// that use it (KAFKA_BROKERS=Addr). It listens on Addr with Topic
// (Partitions partitions) and its DLQ, and keeps nothing across a restart.
type KafkaProcess struct {
	*Process
	Addr string
}

// StartKafka runs `orderflow kafka` on a free port and returns once the
// events topic is there.
func StartKafka(t testing.TB) *KafkaProcess {
	t.Helper()
	k := &KafkaProcess{Addr: FreeAddr(t)}
	k.Process = NewProcess(t, processName(t, "kafka"), Binary(t), nil,
		"kafka", "--addr", k.Addr, "--topic", Topic, "--partitions", strconv.Itoa(Partitions))
	k.Restart(t)
	return k
}

// Restart starts the broker again (after Kill) on the same address and
// returns once the events topic is there.
func (k *KafkaProcess) Restart(t testing.TB) {
	t.Helper()
	k.Start(t)
	deadline := time.Now().Add(Patience)
	for {
		if err, exited := k.Exited(); exited {
			t.Fatalf("orderflow kafka exited: %v\n%s", err, k.LogTail(20))
		}
		err := k.topicReady()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("orderflow kafka not serving %s after %s: %v\n%s", Topic, Patience, err, k.LogTail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (k *KafkaProcess) topicReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := &kafkago.Client{Addr: kafkago.TCP(k.Addr)}
	md, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{Topic}})
	if err != nil {
		return err
	}
	for _, tp := range md.Topics {
		if tp.Name == Topic && tp.Error == nil && len(tp.Partitions) == Partitions {
			return nil
		}
	}
	return fmt.Errorf("topic %s not there yet", Topic)
}

// Produce writes msgs straight to topic as any producer could (the Hash
// balancer, like the relay: a message keyed by an order id lands on that
// order's partition), bypassing the relay: the way tests forge messages.
func Produce(t testing.TB, brokers []string, topic string, msgs ...kafkago.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll}
	defer func() { _ = w.Close() }()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("testenv: produce to %s: %v", topic, err)
	}
}

// ReadTopic returns every message of every partition of topic, from the
// first offset to the end offset at the call.
func ReadTopic(t testing.TB, brokers []string, topic string) []kafkago.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("testenv: metadata of %s: %v %+v", topic, err, md)
	}
	var req []kafkago.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		req = append(req, kafkago.FirstOffsetOf(p.ID), kafkago.LastOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: req}})
	if err != nil {
		t.Fatalf("testenv: offsets of %s: %v", topic, err)
	}
	var out []kafkago.Message
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("testenv: offsets of %s partition %d: %v", topic, po.Partition, po.Error)
		}
		if po.LastOffset <= po.FirstOffset {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: po.Partition,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(po.FirstOffset); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("testenv: read %s partition %d: %v", topic, po.Partition, err)
			}
			out = append(out, m)
			if m.Offset+1 >= po.LastOffset {
				break
			}
		}
		_ = r.Close()
	}
	return out
}
