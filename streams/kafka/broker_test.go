package kafka_test

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/kafka"
)

func TestBrokerPauseRefusesConnectionsAndResumeKeepsState(t *testing.T) {
	t.Parallel()
	b := testenv.Broker(t)
	addr := b.Addrs()[0]
	testenv.CreateTopics(t, b.Addrs(), 1, "kept")

	b.Pause()
	_, err := net.DialTimeout("tcp", addr, time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while paused: %v, want connection refused", err)
	}
	if err := b.Resume(); err != nil {
		t.Fatal(err)
	}
	if b.Addrs()[0] != addr {
		t.Fatalf("address changed: %s → %s", addr, b.Addrs()[0])
	}
	// The topic survived the outage: publishing to it works.
	pub := mustPublisher(t, b.Addrs())
	if err := pub.Publish("kept", message.NewMessage("m", nil)); err != nil {
		t.Fatal(err)
	}
}

func TestBrokerRestartOnSameAddressLosesEverything(t *testing.T) {
	t.Parallel()
	b, err := kafka.NewBroker("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addrs()[0]
	testenv.CreateTopics(t, b.Addrs(), 1, "gone")
	b.Close()

	b, err = kafka.NewBroker(addr, nil)
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = kafka.EnsureTopics(ctx, kafka.Config{Brokers: b.Addrs()}, kafka.TopicSpec{Name: "gone", Partitions: 3, ReplicationFactor: 1})
	if err != nil {
		t.Fatalf("topic should be gone after restart and recreatable with a new shape: %v", err)
	}
}
