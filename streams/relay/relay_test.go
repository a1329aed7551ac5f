package relay_test

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/relay"
)

func TestEveryEventReachesKafkaExactlyOnceInVersionOrder(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	e := newEnv(t, brokers)
	r, _ := e.newRelay(t, nil)
	stop := start(t, r)

	began := time.Now()
	streams := appendConcurrently(t, e.store, 200, 50, 0)
	appended := time.Since(began)
	e.waitCaughtUp(t, time.Minute)
	t.Logf("10000 events from 200 concurrent streams: appended in %s, all acked by Kafka %s after the first append",
		appended.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	stop()

	got := consumeAll(t, brokers, testTopic)
	got.check(t, streams, 50, true)
	if st := r.Status(); st.Published != 10000 {
		t.Errorf("Status().Published = %d, want 10000", st.Published)
	}
}

func TestRelayRestartedAfterCancelMidStreamMissesNothing(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	e := newEnv(t, brokers)

	done := make(chan []eventstore.Stream, 1)
	go func() { done <- appendConcurrently(t, e.store, 50, 40, 2*time.Millisecond) }()
	// Stop and restart the relay three times while appends are running.
	for range 3 {
		r, _ := e.newRelay(t, nil)
		stop := start(t, r)
		time.Sleep(150 * time.Millisecond)
		stop()
	}
	streams := <-done
	r, _ := e.newRelay(t, nil)
	stop := start(t, r)
	e.waitCaughtUp(t, time.Minute)
	stop()

	dups := consumeAll(t, brokers, testTopic).check(t, streams, 40, false)
	t.Logf("cancelled mid-stream 3 times: 2000 events, all present, %d duplicates", dups)
}

func TestFreshTopicRepublishesFromTheStart(t *testing.T) {
	t.Parallel()
	broker := testenv.Broker(t)
	e := newEnv(t, broker.Addrs())
	r, _ := e.newRelay(t, nil)
	stop := start(t, r)
	streams := appendConcurrently(t, e.store, 10, 10, 0)
	e.waitCaughtUp(t, 30*time.Second)
	stop()

	// The embedded broker loses everything on restart: a new one, a new
	// (empty) topic, while the checkpoint says 100.
	broker2 := testenv.Broker(t)
	e.brokers = broker2.Addrs()
	if cp := e.checkpoint(t); cp == 0 {
		t.Fatal("checkpoint did not move")
	}
	r2, _ := e.newRelay(t, nil)
	stop2 := start(t, r2)
	waitStatus(t, r2, 30*time.Second, "republish after reset", func(s relay.Status) bool {
		return s.Resets == 1 && s.Checkpoint == 100
	})
	stop2()
	consumeAll(t, e.brokers, testTopic).check(t, streams, 10, true)
	if r2.Status().Resets != 1 {
		t.Errorf("Resets = %d, want 1", r2.Status().Resets)
	}
}

// A relay signs (consumeAll verifies every message it published), or is
// told in so many words that the topic is trusted.
func TestARelayNeedsASignerOrToBeToldToPublishUnsigned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []string{"127.0.0.1:1"})
	cfg := e.RelayConfig(t, e.brokers)
	for name, mod := range map[string]func(*relay.Config){
		"neither":  func(c *relay.Config) { c.Signer = nil },
		"both":     func(c *relay.Config) { c.Unsigned = true },
		"signer":   func(*relay.Config) {},
		"unsigned": func(c *relay.Config) { c.Signer, c.Unsigned = nil, true },
	} {
		c := cfg
		c.Registerer = nil
		mod(&c)
		_, err := relay.New(c)
		if ok := name == "signer" || name == "unsigned"; ok != (err == nil) {
			t.Errorf("%s: New: %v", name, err)
		}
	}
}
