package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/kafka"
)

// The checks every fault test ends with. Each says what it counted, and the
// test prints it: what was lost (must be nothing acknowledged) and what was
// doubled (duplicates in Kafka are allowed — at least once — doubled effects
// in a read model are not).

// storeEvents reads the whole event store in position order and checks that
// every stream's versions are 1, 2, 3… in position order.
func storeEvents(t testing.TB, pool *pgxpool.Pool) []eventstore.RecordedEvent {
	t.Helper()
	ctx := context.Background()
	store := eventstore.New(pool)
	var all []eventstore.RecordedEvent
	last := map[[16]byte]int64{}
	for after := int64(0); ; {
		evs, err := store.ReadAll(ctx, after, 5000)
		if err != nil {
			t.Fatalf("read the store: %v", err)
		}
		if len(evs) == 0 {
			return all
		}
		for _, ev := range evs {
			if ev.Version != last[ev.StreamID]+1 {
				t.Errorf("store: stream %s has version %d after %d", ev.StreamID, ev.Version, last[ev.StreamID])
			}
			last[ev.StreamID] = ev.Version
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Position
	}
}

type streamVersion struct {
	stream  string
	version int64
}

// checkAcks counts acknowledged commands whose events are not in the store:
// the event an answer named (order, version) must be there at the position
// the answer gave.
func checkAcks(t testing.TB, evs []eventstore.RecordedEvent, acks []ack) (lost int) {
	t.Helper()
	at := make(map[streamVersion]int64, len(evs))
	for _, ev := range evs {
		at[streamVersion{ev.StreamID.String(), ev.Version}] = ev.Position
	}
	for _, a := range acks {
		p, ok := at[streamVersion{a.OrderID, a.Version}]
		if !ok || p != a.Position {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged %s version %d at position %d: the store has it at %d (0: missing)", a.OrderID, a.Version, a.Position, p)
			}
		}
	}
	return lost
}

// topicReport is what checkTopic counted in the events topic.
type topicReport struct {
	messages, missing, duplicates, foreign int
	deadLetters                            int64 // messages in the DLQ topic
}

func (r topicReport) String() string {
	return fmt.Sprintf("%d messages, %d store events missing, %d duplicates, %d not in the store, %d dead letters",
		r.messages, r.missing, r.duplicates, r.foreign, r.deadLetters)
}

// topicMessage is one message of the events topic, decoded.
type topicMessage struct {
	partition int
	offset    int64
	ev        eventstore.RecordedEvent
	err       error // not an event envelope
}

// readTopic reads every partition of the events topic from the start to its
// end offset, in partition order.
func readTopic(t testing.TB, broker string) []topicMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	client := &kafkago.Client{Addr: kafkago.TCP(broker)}
	reqs := make([]kafkago.OffsetRequest, testenv.Partitions)
	for p := range reqs {
		reqs[p] = kafkago.LastOffsetOf(p)
	}
	offs, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{testenv.Topic: reqs}})
	if err != nil {
		t.Fatalf("topic end offsets: %v", err)
	}
	var out []topicMessage
	for _, po := range offs.Topics[testenv.Topic] {
		if po.Error != nil {
			t.Fatalf("partition %d end offset: %v", po.Partition, po.Error)
		}
		if po.LastOffset == 0 {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{broker}, Topic: testenv.Topic, Partition: po.Partition,
			MaxBytes: 8 << 20, MaxWait: 200 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				_ = r.Close()
				t.Fatalf("read partition %d: %v", po.Partition, err)
			}
			ev, err := eventstore.UnmarshalEnvelope(m.Value)
			out = append(out, topicMessage{partition: po.Partition, offset: m.Offset, ev: ev, err: err})
			if m.Offset >= po.LastOffset-1 {
				break
			}
		}
		_ = r.Close()
	}
	return out
}

// checkTopicHead returns the highest position in the events topic.
func checkTopicHead(t testing.TB, broker string) int64 {
	t.Helper()
	var head int64
	for _, m := range readTopic(t, broker) {
		head = max(head, m.ev.Position)
	}
	return head
}

// relayCheckpoint is the relay's stored checkpoint of the events topic.
func relayCheckpoint(t testing.TB, owner *pgxpool.Pool) int64 {
	t.Helper()
	var p int64
	if err := owner.QueryRow(context.Background(), `SELECT coalesce(max(position), 0) FROM relay_checkpoints WHERE name = $1`, testenv.Topic).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// storeHead is the store's highest position.
func storeHead(t testing.TB, owner *pgxpool.Pool) int64 {
	t.Helper()
	var p int64
	if err := owner.QueryRow(context.Background(), `SELECT coalesce(max(position), 0) FROM events`).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkTopic reads every partition of the events topic from the start and
// checks it against the store: every event is there at least once, and in
// each partition an order's versions first appear in order (a resend after
// a crash may repeat "v1 v2 v1 v2", never "v2 v1"). Messages whose event
// the store does not have are counted as foreign and, unless allowForeign
// (a restore from backup leaves them behind), fail the test. The DLQ must
// be empty.
func checkTopic(t testing.TB, broker string, evs []eventstore.RecordedEvent, allowForeign bool) topicReport {
	t.Helper()
	byID := make(map[string]eventstore.RecordedEvent, len(evs))
	for _, ev := range evs {
		byID[ev.ID.String()] = ev
	}
	seen := make(map[string]int, len(evs))
	var rep topicReport
	highest := map[int]map[string]int64{} // partition → stream → highest version first seen there
	for _, m := range readTopic(t, broker) {
		rep.messages++
		ev := m.ev
		switch stored, ok := byID[ev.ID.String()]; {
		case m.err != nil:
			t.Errorf("partition %d offset %d: not an event envelope: %v", m.partition, m.offset, m.err)
		case !ok:
			rep.foreign++
			if !allowForeign && rep.foreign <= 5 {
				t.Errorf("partition %d offset %d: event %s (%s v%d) is not in the store", m.partition, m.offset, ev.ID, ev.StreamID, ev.Version)
			}
		case stored.StreamID != ev.StreamID || stored.Version != ev.Version || stored.Position != ev.Position:
			t.Errorf("event %s: Kafka says %s v%d at %d, the store %s v%d at %d", ev.ID, ev.StreamID, ev.Version, ev.Position,
				stored.StreamID, stored.Version, stored.Position)
		default:
			id := ev.ID.String()
			seen[id]++
			if seen[id] > 1 {
				rep.duplicates++
				continue
			}
			if highest[m.partition] == nil {
				highest[m.partition] = map[string]int64{}
			}
			s := ev.StreamID.String()
			if h := highest[m.partition][s]; ev.Version != h+1 {
				t.Errorf("partition %d offset %d: order %s version %d first seen after version %d", m.partition, m.offset, s, ev.Version, h)
			}
			highest[m.partition][s] = ev.Version
		}
	}
	for _, ev := range evs {
		if seen[ev.ID.String()] == 0 {
			rep.missing++
			if rep.missing <= 5 {
				t.Errorf("event %s (%s v%d, position %d) is not in Kafka", ev.ID, ev.StreamID, ev.Version, ev.Position)
			}
		}
	}
	if !allowForeign && rep.foreign > 0 {
		t.Errorf("%d messages in Kafka are not in the store", rep.foreign)
	}
	// Every event is a valid one: a dead letter means a projection gave up
	// on an event (a transient failure treated as poison, say).
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	client := &kafkago.Client{Addr: kafkago.TCP(broker)}
	dlq, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{
		kafka.DefaultDLQTopic: {kafkago.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatalf("DLQ end offset: %v", err)
	}
	for _, po := range dlq.Topics[kafka.DefaultDLQTopic] {
		rep.deadLetters += po.LastOffset
	}
	if rep.deadLetters > 0 {
		t.Errorf("%d events were dead-lettered", rep.deadLetters)
	}
	return rep
}

// projectionTables are every read model's tables, versions tables included.
func projectionTables() []string {
	var tables []string
	for _, p := range projections.All() {
		tables = append(append(tables, p.Name()+"_versions"), p.Tables()...)
	}
	return tables
}

// waitConverged waits until the relay's checkpoint is at the store's head
// and every projection has applied every event of the store (the sum of an
// order's versions table is its event count, versions being 1…n), and
// returns how long that took. It says every 10 s what it is waiting for.
//
// The hang guard is twice Patience: after a projector is killed, its
// consumer groups hand its partitions over only once its session has
// expired and a rebalance has waited for every member it still counts
// (ORDERFLOW_KAFKA_SESSION_TIMEOUT each, and a few rounds after kills in
// quick succession).
func waitConverged(t testing.TB, owner *pgxpool.Pool) time.Duration {
	t.Helper()
	ctx := context.Background()
	var last string
	start := time.Now()
	nextLog := start.Add(10 * time.Second)
	for {
		var head, events, checkpoint int64
		err := owner.QueryRow(ctx, `SELECT coalesce(max(position), 0), count(*),
			coalesce((SELECT max(position) FROM relay_checkpoints WHERE name = $1), 0) FROM events`, testenv.Topic).
			Scan(&head, &events, &checkpoint)
		if err == nil {
			behind := ""
			if checkpoint < head {
				behind = fmt.Sprintf("relay at %d of %d; ", checkpoint, head)
			}
			for _, p := range projections.All() {
				var applied int64
				if err = owner.QueryRow(ctx, `SELECT coalesce(sum(version), 0) FROM `+p.Name()+`_versions`).Scan(&applied); err != nil {
					break
				}
				if applied != events {
					behind += fmt.Sprintf("%s applied %d of %d events; ", p.Name(), applied, events)
				}
			}
			if err == nil && behind == "" {
				return time.Since(start)
			}
			last = behind
		}
		if err != nil {
			last = err.Error()
		}
		if time.Since(start) > 2*testenv.Patience {
			t.Fatalf("the pipeline did not converge within %s: %s", 2*testenv.Patience, last)
		}
		if time.Now().After(nextLog) {
			t.Logf("converging for %s: %s", time.Since(start).Round(time.Second), last)
			nextLog = nextLog.Add(10 * time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkReadModels is the model checker: every read model, as the live
// pipeline left it, against a fold of the store into empty read models
// (`orderflow projections rebuild all`, the product's own rebuild), row by
// row. Nothing may run against the database meanwhile (stop the serve
// processes first): the live rows are dumped, the rebuild swaps in its
// tables, and the two dumps are compared. It returns how many rows differ.
func checkReadModels(t testing.TB, db *pgtest.DB, bin string) int {
	t.Helper()
	tables := projectionTables()
	live := db.Rows(t, tables...)
	rebuild := exec.Command(bin, "projections", "rebuild", "all")
	rebuild.Env = append(os.Environ(), "DATABASE_URL="+db.URL)
	if out, err := rebuild.CombinedOutput(); err != nil {
		t.Fatalf("orderflow projections rebuild all: %v\n%s", err, out)
	}
	return pgtest.DiffRows(t, "live read models vs rebuilt from the store", db.Rows(t, tables...), live)
}

// verdict is what a fault test prints at its end.
type verdict struct {
	acked, lostInStore, rowsDiffering int
	parked                            int // dead letters still parked: events a projection gave up on
	topic                             topicReport
}

func (v verdict) String() string {
	return fmt.Sprintf("%d acknowledged commands, lost in the store %d; Kafka: %s; read models vs a fold of the store: %d rows differ, %d events parked as dead letters",
		v.acked, v.lostInStore, v.topic, v.rowsDiffering, v.parked)
}

// checkEverything runs every check once the pipeline has converged and every
// serve process has stopped: acknowledged commands in the store, every
// store event in Kafka, and every read model equal to a fold of the store.
func checkEverything(t testing.TB, db *pgtest.DB, broker string, l *load) verdict {
	t.Helper()
	acks, _, _ := l.snapshot()
	evs := storeEvents(t, db.Owner)
	v := verdict{acked: len(acks), lostInStore: checkAcks(t, evs, acks)}
	v.topic = checkTopic(t, broker, evs, false)
	v.rowsDiffering = checkReadModels(t, db, testenv.Binary(t))
	if err := db.Owner.QueryRow(context.Background(), `SELECT count(*) FROM projection_dead_letters WHERE state = 'parked'`).Scan(&v.parked); err != nil {
		t.Fatal(err)
	}
	if v.parked > 0 {
		t.Errorf("%d events are parked as dead letters (orderflow dlq list)", v.parked)
	}
	l.checkNoUnexpected(t)
	return v
}
