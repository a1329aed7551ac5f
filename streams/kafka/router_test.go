package kafka_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/kafka"
)

func TestRouterDeadLettersAfterRetriesAndSurvivesPanics(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	testenv.CreateTopics(t, brokers, 1, "fails.in", "panics.in", kafka.DefaultDLQTopic)
	pub := mustPublisher(t, brokers)
	sub := mustSubscriber(t, testSubscriberConfig(brokers, "router-test", 1))

	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	reg := prometheus.NewRegistry()
	const maxRetries = 3
	r, err := kafka.NewRouter(logger, kafka.RouterOptions{
		DLQPublisher:    pub,
		MaxRetries:      maxRetries,
		InitialInterval: 5 * time.Millisecond,
		MaxInterval:     20 * time.Millisecond,
		CloseTimeout:    10 * time.Second,
		Registerer:      reg,
	})
	if err != nil {
		t.Fatal(err)
	}

	var attempts atomic.Int32
	r.AddConsumerHandler("always-fails", "fails.in", sub, func(msg *message.Message) error {
		attempts.Add(1)
		kafka.LoggerFromContext(msg.Context(), nil).Info("handling")
		return errors.New("boom: projection rejected event")
	})
	handledAfterPanic := make(chan string, 1)
	r.AddConsumerHandler("panics", "panics.in", sub, func(msg *message.Message) error {
		if string(msg.Payload) == "panic" {
			panic("handler bug")
		}
		handledAfterPanic <- string(msg.Payload)
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("router run: %v", err)
		}
	})
	<-r.Running()

	bad := message.NewMessage("11111111-1111-1111-1111-111111111111", []byte(`{"order":"o-1"}`))
	bad.Metadata.Set(kafka.CorrelationIDKey, "corr-42")
	bad.Metadata.Set("partition_key", "o-1")
	if err := pub.Publish("fails.in", bad); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("panics.in",
		message.NewMessage("22222222-2222-2222-2222-222222222222", []byte("panic")),
		message.NewMessage("33333333-3333-3333-3333-333333333333", []byte("fine"))); err != nil {
		t.Fatal(err)
	}

	dlqSub := mustSubscriber(t, testSubscriberConfig(brokers, "", 1))
	dlq := subscribe(t, dlqSub, kafka.DefaultDLQTopic)
	got := map[string]*message.Message{}
	for len(got) < 2 {
		m := receive(t, dlq, 20*time.Second)
		got[m.UUID] = m
		m.Ack()
	}

	t.Run("a handler that always fails is dead-lettered after 1+MaxRetries attempts with its payload and error", func(t *testing.T) {
		m := got[bad.UUID]
		if m == nil {
			t.Fatalf("failed message not in DLQ: %v", got)
		}
		if n := attempts.Load(); n != 1+maxRetries {
			t.Errorf("attempts = %d, want %d", n, 1+maxRetries)
		}
		if string(m.Payload) != string(bad.Payload) {
			t.Errorf("payload = %s", m.Payload)
		}
		if r := m.Metadata.Get(middleware.ReasonForPoisonedKey); !strings.Contains(r, "boom") {
			t.Errorf("reason = %q", r)
		}
		if m.Metadata.Get(middleware.PoisonedTopicKey) != "fails.in" || m.Metadata.Get(kafka.CorrelationIDKey) != "corr-42" {
			t.Errorf("metadata = %v", m.Metadata)
		}
		if m.Metadata.Get(kafka.DefaultKeyMetadata) != "o-1" {
			t.Errorf("DLQ message lost its key: %v", m.Metadata)
		}
	})
	t.Run("a panicking handler is dead-lettered and the router keeps consuming", func(t *testing.T) {
		m := got["22222222-2222-2222-2222-222222222222"]
		if m == nil || !strings.Contains(m.Metadata.Get(middleware.ReasonForPoisonedKey), "handler bug") {
			t.Fatalf("panicking message not dead-lettered with its panic: %v", got)
		}
		select {
		case p := <-handledAfterPanic:
			if p != "fine" {
				t.Errorf("got %q", p)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("message after the panic was not handled")
		}
		if !r.IsRunning() {
			t.Error("router stopped")
		}
	})
	t.Run("the handler's context logger carries the correlation id", func(t *testing.T) {
		if !strings.Contains(logs.String(), `"correlation_id":"corr-42"`) {
			t.Errorf("logs lack correlation id:\n%s", logs.String())
		}
	})
	t.Run("metrics land in the injected registry", func(t *testing.T) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			found = found || mf.GetName() == "orderflow_consumer_messages_total"
		}
		if !found {
			t.Errorf("orderflow_consumer_messages_total not registered: %v", mfs)
		}
	})
}
