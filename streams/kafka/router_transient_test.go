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
	r, err := kafka.NewRouter(nil, kafka.RouterOptions{
		DLQPublisher:    pub,
		MaxRetries:      1,
		InitialInterval: time.Millisecond,
		Transient:       func(err error) bool { return errors.Is(err, errNotTheMessagesFault) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var outage, handled atomic.Int32
	done := make(chan string, 2)
	r.AddConsumerHandler("flaky", "poisonable.in", sub, func(msg *message.Message) error {
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
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-runErr
	})
	<-r.Running()
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
