package kafka_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/kafka"
)

var errNotTheMessagesFault = errors.New("database restarting")

// An error Transient accepts does not dead-letter the message: it is
// nacked and redelivered until the handler succeeds; any other error
// still goes to the DLQ.
func TestRouterRedeliversOnTransientErrorsAndDeadLettersTheRest(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	testenv.CreateTopics(t, brokers, 1, "poisonable.in", kafka.DefaultDLQTopic)
	pub := mustPublisher(t, brokers)
	sub := mustSubscriber(t, testSubscriberConfig(brokers, "poisonable-test", 1))
	var outage, handled atomic.Int32
	done := make(chan string, 2)
	runRouter(t, kafka.RouterOptions{
		DLQPublisher:    pub,
		MaxRetries:      1,
		InitialInterval: time.Millisecond,
		Transient:       func(err error) bool { return errors.Is(err, errNotTheMessagesFault) },
	}, "poisonable.in", sub, func(msg *message.Message) error {
		switch string(msg.Payload) {
		case "waits-out-an-outage":
			if outage.Add(1) <= 5 { // longer than the retries
				return errNotTheMessagesFault
			}
		case "bad":
			return errors.New("bad event")
		}
		handled.Add(1)
		done <- string(msg.Payload)
		return nil
	})
	if err := pub.Publish("poisonable.in",
		message.NewMessage("44444444-4444-4444-4444-444444444444", []byte("waits-out-an-outage")),
		message.NewMessage("55555555-5555-5555-5555-555555555555", []byte("bad")),
		message.NewMessage("66666666-6666-6666-6666-666666666666", []byte("fine"))); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"waits-out-an-outage", "fine"} {
		select {
		case got := <-done:
			if got != want {
				t.Fatalf("handled %q, want %q (in partition order)", got, want)
			}
		case <-time.After(hangGuard):
			t.Fatalf("%q never handled", want)
		}
	}
	dlq := subscribe(t, mustSubscriber(t, testSubscriberConfig(brokers, "", 1)), kafka.DefaultDLQTopic)
	m := receive(t, dlq, hangGuard)
	m.Ack()
	if string(m.Payload) != "bad" || !strings.Contains(m.Metadata.Get(middleware.ReasonForPoisonedKey), "bad event") {
		t.Errorf("dead letter %q with reason %q, want only the bad event", m.Payload, m.Metadata.Get(middleware.ReasonForPoisonedKey))
	}
	// "fine" came after "bad" in the partition, one message at a time, so
	// every dead letter is published by now: exactly one.
	conn, err := kafkago.DialLeader(context.Background(), "tcp", brokers[0], kafka.DefaultDLQTopic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if n, err := conn.ReadLastOffset(); err != nil || n != 1 {
		t.Errorf("the DLQ holds %d messages (%v), want only the bad one", n, err)
	}
}

var errRefusedForGood = errors.New("check constraint refuses the value")

// An error Permanent accepts skips the retries: the handler runs once and
// the message goes to the DLQ, while an ordinary error is retried first.
func TestRouterDeadLettersPermanentErrorsWithoutRetrying(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	testenv.CreateTopics(t, brokers, 1, "permanent.in", kafka.DefaultDLQTopic)
	pub := mustPublisher(t, brokers)
	sub := mustSubscriber(t, testSubscriberConfig(brokers, "permanent-test", 1))
	const retries = 3
	var refusedCalls, badCalls atomic.Int32
	done := make(chan struct{})
	runRouter(t, kafka.RouterOptions{
		DLQPublisher:    pub,
		MaxRetries:      retries,
		InitialInterval: time.Millisecond,
		Permanent:       func(err error) bool { return errors.Is(err, errRefusedForGood) },
	}, "permanent.in", sub, func(msg *message.Message) error {
		switch string(msg.Payload) {
		case "refused":
			refusedCalls.Add(1)
			return errRefusedForGood
		case "bad":
			badCalls.Add(1)
			return errors.New("bad event")
		}
		close(done)
		return nil
	})
	if err := pub.Publish("permanent.in",
		message.NewMessage("77777777-7777-7777-7777-777777777777", []byte("refused")),
		message.NewMessage("88888888-8888-8888-8888-888888888888", []byte("bad")),
		message.NewMessage("99999999-9999-9999-9999-999999999999", []byte("fine"))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatal("the message after the dead letters was never handled")
	}
	// One message at a time in partition order: both dead letters are
	// settled before "fine" ran.
	if n := refusedCalls.Load(); n != 1 {
		t.Errorf("a permanently refused message was handled %d times, want once (no retries)", n)
	}
	if n := badCalls.Load(); n != 1+retries {
		t.Errorf("an ordinary failure was handled %d times, want %d (retried)", n, 1+retries)
	}
	dlq := subscribe(t, mustSubscriber(t, testSubscriberConfig(brokers, "", 1)), kafka.DefaultDLQTopic)
	for _, want := range []string{"refused", "bad"} {
		m := receive(t, dlq, hangGuard)
		m.Ack()
		if string(m.Payload) != want {
			t.Errorf("dead letter %q, want %q", m.Payload, want)
		}
	}
}

// runRouter runs a router with opts and one handler of topic until the test
// ends; it returns once the router is running.
func runRouter(t *testing.T, opts kafka.RouterOptions, topic string, sub message.Subscriber, h message.NoPublishHandlerFunc) {
	t.Helper()
	r, err := kafka.NewRouter(nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.AddConsumerHandler("test", topic, sub, h)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-runErr
	})
	<-r.Running()
}
