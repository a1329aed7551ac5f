package projector_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/kafka"
	"github.com/orderflow/orderflow/streams/projector"
)

// forgery is a message produced straight to the topic by someone without
// the relay's key, and what the projector must say of it.
type forgery struct {
	name   string
	msg    kafkago.Message
	reason envelope.Reason
}

// forgeries of the order's next version: a cancellation the order never
// had, written as the relay would write it, then unsigned, signed with a
// key of the forger's own under the relay's key id, signed with a key no
// longer accepted, and a real signed message whose value was replaced.
func forgeries(t *testing.T, e *testenv.Env, stream eventstore.Stream) []forgery {
	t.Helper()
	ev := testenv.Forge(t, e.Store, stream, "OrderCancelled", map[string]any{"reason": "forged", "cancelled_at": time.Now().UTC()})
	forged := func(sign func(*kafkago.Message) error) kafkago.Message {
		m, err := envelope.Message(ev)
		if err != nil {
			t.Fatal(err)
		}
		if sign != nil {
			if err := sign(&m); err != nil {
				t.Fatal(err)
			}
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
	// The relay's own message of the order's last event, its value swapped.
	evs, err := e.Store.ReadStream(context.Background(), stream, 1, 1000)
	if err != nil || len(evs) == 0 {
		t.Fatalf("read %s: %v", stream.ID, err)
	}
	tampered, err := envelope.Message(evs[len(evs)-1])
	if err == nil {
		err = testenv.EventSigner(t).Sign(&tampered)
	}
	if err != nil {
		t.Fatal(err)
	}
	tampered.Value = forged(nil).Value
	return []forgery{
		{"unsigned", forged(nil), envelope.ReasonUnsigned},
		{"signed with the forger's key under the relay's key id", forged(signWith(testenv.EventKey(t).ID)), envelope.ReasonBadSignature},
		{"signed with a removed key", forged(signWith("retired-2025")), envelope.ReasonUnknownKey},
		{"the relay's signature over another value", tampered, envelope.ReasonBadSignature},
	}
}

func TestForgedEnvelopesAreDeadLetteredAndNeverApplied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := testenv.New(t)
	brokers := e.Kafka(t)
	e.StartRelay(t, nil)
	metrics := prometheus.NewRegistry()
	log := testenv.Logger(t)
	rt, err := projections.NewRuntime(e.DB.Projector, eventstore.New(e.DB.Projector), e.Registry, metrics, log)
	if err != nil {
		t.Fatal(err)
	}
	all := projections.All()
	cfg := projector.Config{
		Kafka: kafka.Config{Brokers: brokers}, Topic: testenv.Topic, Partitions: testenv.Partitions,
		Verifier: testenv.EventVerifier(t), Runtime: rt, Projections: all,
		MaxRetries: 1, InitialInterval: 10 * time.Millisecond, Registerer: metrics, Logger: log,
	}
	testenv.Run(t, "projector", func(ctx context.Context) error { return projector.Run(ctx, cfg) })

	svc, err := commands.NewService(commands.Config{Store: e.Store, Registry: e.Registry})
	if err != nil {
		t.Fatal(err)
	}
	id := ulid.Make()
	stream := eventstore.Stream{ID: id, Type: order.StreamType}
	run := func(c commands.Command) {
		t.Helper()
		if _, err := svc.Execute(ctx, commands.Request{OrderID: id, Command: c}); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	run(commands.CreateOrder{OrderID: id, CustomerID: "c-1", Currency: "EUR",
		Items: []commands.ItemInput{{SKU: "A", Name: "a", Quantity: 1, UnitPriceMinor: 500}}})
	waitApplied(t, e, all, id, 2)

	// The forgeries of version 3 reach the order's partition before the
	// real version 3 does.
	forged := forgeries(t, e, stream)
	for _, f := range forged {
		testenv.Produce(t, brokers, testenv.Topic, f.msg)
	}
	run(commands.AddItem{SKU: "B", Name: "b", Quantity: 2, UnitPriceMinor: 300})
	run(commands.PlaceOrder{})
	waitApplied(t, e, all, id, 4)

	// The read model is the real order's: placed, two lines, never
	// cancelled; and every projection equals a rebuild from the store.
	var status string
	var version, lines int64
	var reason *string
	if err := e.DB.Query.QueryRow(ctx, `SELECT status, version, line_count, cancel_reason FROM order_summaries WHERE order_id = $1`, id).
		Scan(&status, &version, &lines, &reason); err != nil {
		t.Fatal(err)
	}
	if status != string(order.StatusPlaced) || version != 4 || lines != 2 || reason != nil {
		t.Errorf("order summary: status %s, version %d, %d lines, cancel reason %v; want placed, 4, 2, none", status, version, lines, reason)
	}
	for _, p := range all {
		live := dump(t, e.DB, p)
		if _, err := rt.Rebuild(ctx, e.DB.Owner, p, nil); err != nil {
			t.Fatal(err)
		}
		for table, rows := range dump(t, e.DB, p) {
			if strings.Join(rows, "\n") != strings.Join(live[table], "\n") {
				t.Errorf("%s: the model built from Kafka differs from a rebuild from the store", table)
			}
		}
	}

	// Every projection dead-lettered every forgery, once or more, with its
	// reason, and counted it in kafka_rejected_messages_total; nothing real
	// went there.
	type key struct{ projection, signature, value string }
	want := map[key]forgery{}
	for _, p := range all {
		for _, f := range forged {
			want[key{p.Name(), headerOf(f.msg, envelope.HeaderSignature), string(f.msg.Value)}] = f
		}
	}
	deadline := time.Now().Add(testenv.Patience)
	for {
		got := map[key]bool{}
		for _, m := range testenv.ReadTopic(t, brokers, kafka.DefaultDLQTopic) {
			k := key{headerOf(m, middleware.PoisonedHandlerKey), headerOf(m, envelope.HeaderSignature), string(m.Value)}
			f, ok := want[k]
			if !ok {
				t.Fatalf("dead-lettered and not forged: %s %s", k.projection, m.Value)
			}
			if r := headerOf(m, middleware.ReasonForPoisonedKey); !strings.Contains(r, string(f.reason)) || string(m.Key) != id.String() {
				t.Errorf("%s: %q dead-lettered with reason %q, key %q; want %s", k.projection, f.name, r, m.Key, f.reason)
			}
			got[k] = true
		}
		counted := true
		for _, p := range all {
			n := map[envelope.Reason]float64{}
			for _, f := range forged {
				n[f.reason]++
			}
			for r, c := range n {
				counted = counted && metric(t, metrics, envelope.RejectedMetric, "consumer", cfg.GroupID(p), "reason", string(r)) >= c
			}
		}
		if len(got) == len(want) && counted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d of %d forgeries dead-lettered, counted: %v", testenv.Patience, len(got), len(want), counted)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range all {
		if n := metric(t, metrics, "projection_events_applied_total", "projection", p.Name()); n != 4 {
			t.Errorf("%s applied %v events, want the order's 4", p.Name(), n)
		}
		// The read model misses nothing: no event was given up on.
		if n := metric(t, metrics, "projection_dlq_total", "projection", p.Name()); n != 0 {
			t.Errorf("projection_dlq_total{projection=%s} = %v, want 0", p.Name(), n)
		}
	}
}

// waitApplied waits until every projection has applied version v of order id.
func waitApplied(t *testing.T, e *testenv.Env, ps []projections.Projection, id ulid.ULID, v int64) {
	t.Helper()
	deadline := time.Now().Add(testenv.Patience)
	for {
		done := true
		for _, p := range ps {
			var got int64
			err := e.DB.Query.QueryRow(context.Background(), `SELECT coalesce(max(version), 0) FROM `+p.Name()+`_versions WHERE stream_id = $1`, id).Scan(&got)
			if err != nil {
				t.Fatal(err)
			}
			done = done && got >= v
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("version %d of %s not applied everywhere within %s", v, id, testenv.Patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func headerOf(m kafkago.Message, name string) string {
	for _, h := range m.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}

// metric is the value of the series of name whose labels include the
// given name/value pairs (0 if none).
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}
