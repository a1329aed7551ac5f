package hub_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/hub"
)

// Forged messages produced straight to the topic, for a real order's next
// version, never reach a dashboard, and the real events behind them still
// do: unsigned (one of them at position 2^62), signed with a forger's key
// under the relay's key id, signed with a removed key, a real signature
// over another value; and, past the signature (a leaked key), a position of
// 2^62 the store does not hold, which the sequencer drops instead of
// waiting below it.
func TestForgedMessagesNeverReachADashboardAndRealEventsKeepFlowing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, nil)
	ctx := context.Background()
	id := ulid.Make()
	stream := eventstore.Stream{ID: id, Type: "order"}
	c := mustDial(t, th.url)
	c.subscribe("orders")
	c.subscribe("order:" + id.String())
	c.waitSubscribed(testenv.Patience, "orders", "order:"+id.String())
	appendReal := func(v int64) {
		t.Helper()
		exp := eventstore.Exact(v - 1)
		if v == 1 {
			exp = eventstore.NoStream()
		}
		if _, err := e.store.Append(ctx, stream, exp, []eventstore.EventData{orderEvent(id, "c-1", v, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	appendReal(1)
	appendReal(2)
	c.waitUntil(testenv.Patience, "versions 1 and 2", func(c *client) bool { return len(c.events["order:"+id.String()]) == 2 })

	forged := testenv.Forge(t, e.store, stream, "ItemAdded", map[string]any{"sku": "forged", "quantity": 1000, "unit_price_minor": 1})
	message := func(ev eventstore.RecordedEvent, sign func(*kafkago.Message) error) kafkago.Message {
		m, err := envelope.Message(ev)
		if err == nil && sign != nil {
			err = sign(&m)
		}
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	signWith := func(id string) func(*kafkago.Message) error {
		k, err := envelope.GenerateKey(id)
		if err != nil {
			t.Fatal(err)
		}
		s, err := envelope.NewSigner(k)
		if err != nil {
			t.Fatal(err)
		}
		return s.Sign
	}
	far := forged
	far.Position = 1 << 62
	real2, err := e.store.ReadStream(ctx, stream, 2, 1)
	if err != nil || len(real2) != 1 {
		t.Fatal(err)
	}
	tampered := message(real2[0], testenv.EventSigner(t).Sign)
	tampered.Value = message(forged, nil).Value

	// The hub reads from the end of the topic: the unsigned forgery is
	// sent until the hub has refused one, so that its reader of the
	// order's partition is known to be positioned before the rest.
	rejected := func(r envelope.Reason) float64 {
		return th.metric(envelope.RejectedMetric, "consumer", "hub", "reason", string(r))
	}
	deadline := time.Now().Add(testenv.Patience)
	for rejected(envelope.ReasonUnsigned) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the hub never refused the unsigned forgery")
		}
		testenv.Produce(t, e.brokers, testTopic, message(forged, nil))
		time.Sleep(50 * time.Millisecond)
	}
	testenv.Produce(t, e.brokers, testTopic,
		message(far, nil),
		message(forged, signWith(testenv.EventKey(t).ID)),
		message(forged, signWith("retired-2025")),
		tampered,
		message(far, testenv.EventSigner(t).Sign), // a leaked key: past the signature
	)
	want := map[envelope.Reason]float64{envelope.ReasonUnsigned: 2, envelope.ReasonBadSignature: 2, envelope.ReasonUnknownKey: 1,
		hub.ReasonPositionNotInStore: 1}
	deadline = time.Now().Add(testenv.Patience)
	for r, n := range want {
		for rejected(r) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s{consumer=hub,reason=%s} = %v, want at least %v", envelope.RejectedMetric, r, rejected(r), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Every forgery is behind us; the order's real versions 3 and 4 still
	// reach the dashboard.
	appendReal(3)
	appendReal(4)
	c.waitUntil(testenv.Patience, "versions 3 and 4", func(c *client) bool { return len(c.events["order:"+id.String()]) >= 4 })

	var versions, positions, wantPositions []int64
	for _, f := range c.eventsOf("order:" + id.String()) {
		versions = append(versions, f.Version)
	}
	for _, f := range c.eventsOf("orders") {
		positions = append(positions, f.Position)
	}
	for _, ev := range allEvents(t, e.store) {
		wantPositions = append(wantPositions, ev.Position)
	}
	if !slices.Equal(versions, []int64{1, 2, 3, 4}) || !slices.Equal(positions, wantPositions) {
		t.Errorf("order channel versions %v (want 1 2 3 4), orders channel positions %v (want the store's %v)", versions, positions, wantPositions)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.frames {
		if bytes.Contains(f.raw, []byte("forged")) || f.Position == 1<<62 {
			t.Errorf("a forged event reached the dashboard: %s", f.raw)
		}
	}
}
