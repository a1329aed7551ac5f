package kafka_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/kafka"
)

// testSubscriberConfig has group timings short enough for tests: a rebalance
// is noticed within one heartbeat.
func testSubscriberConfig(brokers []string, group string, partitions int) kafka.SubscriberConfig {
	return kafka.SubscriberConfig{
		Config:            kafka.Config{Brokers: brokers, ClientID: "orderflow-test"},
		GroupID:           group,
		HeartbeatInterval: 100 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  100 * time.Millisecond,
		NackResendSleep:   10 * time.Millisecond,
		MaxWait:           200 * time.Millisecond,
		InitPartitions:    partitions,
	}
}

func newPubSub(t *testing.T, brokers []string, group string, partitions int) (message.Publisher, message.Subscriber) {
	t.Helper()
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Config: kafka.Config{Brokers: brokers}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := kafka.NewSubscriber(testSubscriberConfig(brokers, group, partitions), nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, sub
}

// The suite's topics get one partition, so the suite's ordering tests (which
// publish without keys and run up to 10 subscribers in one group) check the
// guarantee we actually give: total order within a partition. Per-key order
// across many partitions, with partitions consumed concurrently, is
// TestSubscriberKeepsPerKeyOrderAcrossPartitions.
//
// NewSubscriberReceivesOldMessages is false here because the suite's
// constructor must share one consumer group within a test
// (TestContinueAfterSubscribeClose resumes from the group's offsets); the
// group-less mode runs that test in TestPubSubWithoutGroup. The group is the
// test's own (suiteGroup), not one for the whole suite: thirty parallel tests
// joining and leaving one group on thirty topics rebalance each other, and
// on a busy machine a test could wait out its timeout in rebalances without
// being assigned its partition. TestReconnect skips itself (RestartServiceCommand
// is an external command); TestBrokerOutage covers reconnects in-process.
func TestPubSubConformance(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	tests.TestPubSub(t,
		tests.Features{
			ConsumerGroups:      true,
			ExactlyOnceDelivery: false,
			GuaranteedOrder:     true,
			Persistent:          true,
			ForceShort:          testing.Short(),
		},
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return newPubSub(t, brokers, suiteGroup(t), 1)
		},
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			return newPubSub(t, brokers, group, 1)
		},
	)
}

// suiteGroup names the consumer group of one conformance test: its name
// below TestPubSubConformance, so every constructor call of one test (and
// of its subtests) shares it and no other test does.
func suiteGroup(t *testing.T) string {
	parts := strings.SplitN(t.Name(), "/", 3)
	return "conformance." + strings.Join(parts[:min(len(parts), 2)], ".")
}

func TestPubSubWithoutGroup(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	features := tests.Features{
		ConsumerGroups:                      false,
		GuaranteedOrder:                     true,
		GuaranteedOrderWithSingleSubscriber: true,
		Persistent:                          true,
		NewSubscriberReceivesOldMessages:    true,
		ForceShort:                          true,
	}
	ctor := func(t *testing.T) (message.Publisher, message.Subscriber) {
		return newPubSub(t, brokers, "", 1)
	}
	for name, fn := range map[string]func(*testing.T, tests.TestContext, tests.PubSubConstructor){
		"PublishSubscribe":                 tests.TestPublishSubscribe,
		"NoAck":                            tests.TestNoAck,
		"ResendOnError":                    tests.TestResendOnError,
		"MessageCtx":                       tests.TestMessageCtx,
		"SubscribeCtx":                     tests.TestSubscribeCtx,
		"NewSubscriberReceivesOldMessages": tests.TestNewSubscriberReceivesOldMessages,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, ctor)
		})
	}
}
