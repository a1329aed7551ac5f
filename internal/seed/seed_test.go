package seed_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/seed"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
)

// foldStream decodes and folds one stream's rows, checking what every
// stream of the command side satisfies.
func foldStream(t *testing.T, reg *order.Registry, id [16]byte, types []string, schemas []int, data [][]byte, versions []int64) order.State {
	t.Helper()
	var st order.State
	for i := range types {
		if versions[i] != int64(i+1) {
			t.Fatalf("order %x: event %d has version %d, want %d", id, i, versions[i], i+1)
		}
		e, err := reg.Decode(types[i], schemas[i], data[i])
		if err != nil {
			t.Fatalf("order %x version %d: %v", id, versions[i], err)
		}
		if _, first := e.(order.OrderCreated); first != (i == 0) {
			t.Fatalf("order %x: OrderCreated at version %d", id, versions[i])
		}
		st.Apply(e)
	}
	if st.ID != id {
		t.Fatalf("order %x folds to id %s", id, st.ID)
	}
	return st
}

func TestTheGeneratedLivesHaveTheBriefsShapes(t *testing.T) {
	reg := order.NewRegistry()
	const n = 20000
	g, err := seed.NewGenerator(reg, seed.Config{Orders: n, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	byStatus := map[order.Status]int{}
	var lastCreated time.Time
	for {
		rows, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rows == nil {
			break
		}
		for i := 0; i < len(rows); {
			j := i + 1
			for j < len(rows) && rows[j].StreamID == rows[i].StreamID {
				j++
			}
			var (
				types    []string
				schemas  []int
				data     [][]byte
				versions []int64
			)
			for _, r := range rows[i:j] {
				types, schemas = append(types, r.Type), append(schemas, int(r.SchemaVersion))
				data, versions = append(data, r.Data), append(versions, r.Version)
			}
			st := foldStream(t, reg, rows[i].StreamID, types, schemas, data, versions)
			if st.CreatedAt.Before(lastCreated) {
				t.Fatalf("order %s created before the previous one", st.ID)
			}
			lastCreated = st.CreatedAt
			if got := time.UnixMilli(int64(st.ID.Time())).UTC(); !got.Equal(st.CreatedAt) {
				t.Fatalf("order %s: ULID time %s, created_at %s", st.ID, got, st.CreatedAt)
			}
			byStatus[st.Status]++
			i = j
		}
	}
	stats := g.Stats()
	if stats.Orders != n {
		t.Fatalf("%d orders, want %d", stats.Orders, n)
	}
	share := func(ss ...order.Status) float64 {
		k := 0
		for _, s := range ss {
			k += byStatus[s]
			if int64(byStatus[s]) != stats.ByStatus[s] {
				t.Errorf("%s: folded %d, stats say %d", s, byStatus[s], stats.ByStatus[s])
			}
		}
		return float64(k) / n
	}
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"placed or later", 1 - share(order.StatusDraft) - 0.04, 0.80},
		{"paid or later", share(order.StatusPaid, order.StatusShipped, order.StatusDelivered) + 0.04, 0.65},
		{"shipped or later", share(order.StatusShipped, order.StatusDelivered), 0.45},
		{"delivered", share(order.StatusDelivered), 0.30},
		{"cancelled", share(order.StatusCancelled), 0.12},
	} {
		// The 4% of draft and paid cancellations are added back above.
		if math.Abs(c.got-c.want) > 0.015 {
			t.Errorf("%s: %.3f of orders, want about %.2f", c.name, c.got, c.want)
		}
	}
	per := slices.Clone(stats.PerCustomer)
	slices.Sort(per)
	if top, mean := per[len(per)-1], float64(n)/float64(len(per)); float64(top) < 10*mean {
		t.Errorf("the busiest customer has %d orders, the mean is %.1f: want some customers with many orders", top, mean)
	}
}

func TestASeededStoreDecodesFoldsAndRebuilds(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	db, store, reg := e.DB, e.Store, e.Registry
	if err := seed.CreateCompareTable(ctx, db.Owner, "scratch", true); err != nil {
		t.Fatal(err)
	}

	const n = 200
	// The owner writes the events: seeding copies rows straight into the
	// table and creates past months' partitions, which no serving role may.
	res, err := seed.Load(ctx, reg, seed.Config{Orders: n, Customers: 30, Batch: 300}, seed.Target{
		Events: db.Owner, Partitions: eventstore.New(db.Owner), Compare: db.Owner, CompareTable: pgx.Identifier{"scratch"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Orders != n || res.Batches < 3 {
		t.Fatalf("loaded %d orders in %d batches, want %d in several", res.Orders, res.Batches, n)
	}
	var copied int64
	if err := db.Owner.QueryRow(ctx, `SELECT count(*) FROM scratch`).Scan(&copied); err != nil || copied != res.Events {
		t.Fatalf("compare table holds %d rows (%v), want %d", copied, err, res.Events)
	}

	// Every stream decodes and folds, versions 1..n, metadata as written.
	type stream struct {
		types    []string
		schemas  []int
		data     [][]byte
		versions []int64
	}
	streams := map[[16]byte]*stream{}
	var ids [][16]byte
	head, err := store.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = store.Scan(ctx, eventstore.Filter{UpToPosition: head}, func(e eventstore.RecordedEvent) error {
		if e.StreamType != order.StreamType || e.Metadata.Actor != seed.Actor || e.Metadata.CorrelationID == "" {
			t.Fatalf("event %s: stream type %q, metadata %+v", e.ID, e.StreamType, e.Metadata)
		}
		s := streams[e.StreamID]
		if s == nil {
			s = &stream{}
			streams[e.StreamID] = s
			ids = append(ids, e.StreamID)
		}
		s.types, s.schemas = append(s.types, e.Type), append(s.schemas, e.SchemaVersion)
		s.data, s.versions = append(s.data, e.Data), append(s.versions, e.Version)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != n || head != res.Events {
		t.Fatalf("%d streams and head %d, want %d and %d", len(streams), head, n, res.Events)
	}
	for _, id := range ids {
		s := streams[id]
		foldStream(t, reg, id, s.types, s.schemas, s.data, s.versions)
	}

	// recorded_at never goes back in position order (exports map a time
	// range to a position range).
	var backwards int
	if err := db.Owner.QueryRow(ctx, `SELECT count(*) FROM (SELECT recorded_at < lag(recorded_at) OVER (ORDER BY position) AS back FROM events) x WHERE back`).Scan(&backwards); err != nil || backwards != 0 {
		t.Fatalf("%d events recorded before their predecessor in position order (%v)", backwards, err)
	}

	rt, err := projections.NewRuntime(db.Projector, eventstore.New(db.Projector), reg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := rt.Rebuild(ctx, db.Owner, projections.OrderSummary{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var summaries int
	if err := db.Owner.QueryRow(ctx, `SELECT count(*) FROM order_summaries`).Scan(&summaries); err != nil {
		t.Fatal(err)
	}
	if st.Orders != n || st.Undecodable != 0 || summaries != n {
		t.Fatalf("rebuild: %d orders, %d undecodable, %d summaries; want %d, 0, %d", st.Orders, st.Undecodable, summaries, n, n)
	}
}
