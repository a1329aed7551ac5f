package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/relay"
)

const (
	testTopic      = testenv.Topic
	testPartitions = testenv.Partitions
)

// env is a fresh store and the brokers its relays publish to (a test's own:
// some stand behind a fault proxy).
type env struct {
	*testenv.Env
	db      *pgtest.DB
	store   *eventstore.Store
	brokers []string
}

func newEnv(t testing.TB, brokers []string) *env {
	t.Helper()
	e := testenv.New(t)
	return &env{Env: e, db: e.DB, store: e.Store, brokers: brokers}
}

// newRelay builds a relay with test-sized intervals; mod may adjust cfg.
func (e *env) newRelay(t testing.TB, mod func(*relay.Config)) (*relay.Relay, *prometheus.Registry) {
	t.Helper()
	cfg := e.RelayConfig(t, e.brokers)
	if mod != nil {
		mod(&cfg)
	}
	r, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, cfg.Registerer.(*prometheus.Registry)
}

// start runs r until the returned stop is called (or the test ends).
func start(t testing.TB, r *relay.Relay) (stop func()) {
	t.Helper()
	return testenv.Run(t, "relay", r.Run)
}

func newStream() eventstore.Stream { return eventstore.Stream{ID: ulid.Make(), Type: "order"} }

func eventsN(from, n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = eventstore.EventData{
			ID: ulid.Make(), Type: "OrderNoted", SchemaVersion: 1,
			Data:     json.RawMessage(fmt.Sprintf(`{"n":%d}`, from+i)),
			Metadata: eventstore.Metadata{CorrelationID: "corr-" + strconv.Itoa(from+i)},
		}
	}
	return out
}

// appendConcurrently appends perStream events one at a time to each of n
// streams, one goroutine per stream, pausing pause between appends.
func appendConcurrently(t testing.TB, s *eventstore.Store, n, perStream int, pause time.Duration) []eventstore.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	streams := make([]eventstore.Stream, n)
	for i := range streams {
		streams[i] = newStream()
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, st := range streams {
		wg.Go(func() {
			for v := range perStream {
				exp := eventstore.NoStream()
				if v > 0 {
					exp = eventstore.Exact(int64(v))
				}
				if _, err := s.Append(ctx, st, exp, eventsN(v, 1)); err != nil {
					errs <- fmt.Errorf("append %s v%d: %w", st.ID, v+1, err)
					return
				}
				if pause > 0 {
					time.Sleep(pause)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	// Error, not Fatal: this may run on a goroutine other than the test's.
	for err := range errs {
		t.Error(err)
	}
	return streams
}

// waitStatus polls r.Status until ok or timeout.
func waitStatus(t testing.TB, r *relay.Relay, timeout time.Duration, what string, ok func(relay.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok(r.Status()) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; status %+v", timeout, what, r.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitCaughtUp waits until the stored checkpoint reaches the store's head.
func (e *env) waitCaughtUp(t testing.TB, timeout time.Duration) int64 {
	t.Helper()
	ctx := context.Background()
	head, err := e.store.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		cp := e.checkpoint(t)
		if cp >= head {
			return head
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay did not catch up within %s: checkpoint %d, head %d", timeout, cp, head)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) checkpoint(t testing.TB) int64 {
	t.Helper()
	var cp int64
	err := e.db.Owner.QueryRow(context.Background(),
		`SELECT coalesce((SELECT position FROM relay_checkpoints WHERE name = $1), 0)`, testTopic).Scan(&cp)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// consumed is what a topic holds, per stream key, in partition order.
type consumed struct {
	total    int
	versions map[string][]int64
}

// consumeAll reads every partition of the topic from the first offset to the
// end offset observed at the start; every message must carry the relay's
// signature (with the test's key) and headers that match its envelope.
func consumeAll(t testing.TB, brokers []string, topic string) consumed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	verifier := testenv.EventVerifier(t)
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	var req []kafkago.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		req = append(req, kafkago.LastOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: req}})
	if err != nil {
		t.Fatal(err)
	}
	out := consumed{versions: map[string][]int64{}}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("end offset of partition %d: %v", po.Partition, po.Error)
		}
		if po.LastOffset == 0 {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{
			Brokers: brokers, Topic: topic, Partition: po.Partition,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond,
		})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("read partition %d: %v", po.Partition, err)
			}
			env, err := eventstore.UnmarshalEnvelope(m.Value)
			if err != nil {
				t.Fatalf("partition %d offset %d: %v", po.Partition, m.Offset, err)
			}
			if string(m.Key) != env.StreamID.String() {
				t.Fatalf("key %q is not the stream id %s", m.Key, env.StreamID)
			}
			if err := verifier.Verify(m); err != nil {
				t.Fatalf("partition %d offset %d: %v", po.Partition, m.Offset, err)
			}
			if h := header(m, envelope.HeaderVersion); h != strconv.FormatInt(env.Version, 10) {
				t.Fatalf("version header %q, envelope version %d", h, env.Version)
			}
			if header(m, envelope.HeaderType) != env.Type || header(m, envelope.HeaderEventID) != env.ID.String() ||
				header(m, envelope.HeaderCorrelationID) != env.Metadata.CorrelationID {
				t.Fatalf("headers %+v do not match envelope %+v", m.Headers, env)
			}
			out.total++
			out.versions[env.StreamID.String()] = append(out.versions[env.StreamID.String()], env.Version)
			if m.Offset+1 >= po.LastOffset {
				break
			}
		}
		_ = r.Close()
	}
	return out
}

func header(m kafkago.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// check verifies that every stream's versions 1..perStream arrived and that
// a consumer applying "only the next version, ignore older ones" (the
// projectors' rule) never meets a gap. It returns the number of duplicates.
// exact demands no duplicates at all.
func (c consumed) check(t testing.TB, streams []eventstore.Stream, perStream int, exact bool) int {
	t.Helper()
	want := make(map[string]int, len(streams))
	for _, st := range streams {
		want[st.ID.String()] = perStream
	}
	return c.checkCounts(t, want, exact)
}

// checkCounts is check with a version count per stream id.
func (c consumed) checkCounts(t testing.TB, want map[string]int, exact bool) int {
	t.Helper()
	if len(c.versions) != len(want) {
		t.Errorf("topic has %d keys, want %d", len(c.versions), len(want))
	}
	dups, total := 0, 0
	for id, n := range want {
		total += n
		vs := c.versions[id]
		applied := int64(0)
		for _, v := range vs {
			switch {
			case v == applied+1:
				applied = v
			case v <= applied:
				dups++
			default:
				t.Fatalf("stream %s: version %d after %d (order broken): %v", id, v, applied, vs)
			}
		}
		if applied != int64(n) {
			t.Fatalf("stream %s: reached version %d, want %d: %v", id, applied, n, vs)
		}
		if exact && len(vs) != n {
			t.Fatalf("stream %s: %d messages, want exactly %d: %v", id, len(vs), n, vs)
		}
	}
	if c.total != total+dups {
		t.Errorf("topic holds %d messages, %d events + %d duplicates", c.total, total, dups)
	}
	return dups
}
