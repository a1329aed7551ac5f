package projections

import (
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/order"
)

func TestStatusCountsRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	checkRebuildEqualsLive(t, StatusCounts{})
}

func TestStatusCountsKeepsAllSixStatusesIncludingZeros(t *testing.T) {
	t.Parallel()
	e := newProjEnv(t)
	e.applyScenario(StatusCounts{}, handScenario())
	// D is a draft, B shipped, E delivered, A and C cancelled; placed and paid
	// were passed through and are back to 0.
	e.checkScenario(StatusCounts{}, map[string][]string{
		"status_counts": {"(cancelled,2)", "(delivered,1)", "(draft,1)", "(paid,0)", "(placed,0)", "(shipped,1)"},
	})
}

func TestStatusCountsAnEmptyModelHasSixZeroRowsLiveAndRebuilt(t *testing.T) {
	t.Parallel()
	e := newProjEnv(t)
	e.checkScenario(StatusCounts{}, map[string][]string{
		"status_counts": {"(cancelled,0)", "(delivered,0)", "(draft,0)", "(paid,0)", "(placed,0)", "(shipped,0)"},
	})
}

// A gap fill applies several changes of one order in one transaction, and a
// batch those of many orders. The builder sums them per status and writes
// each row once, in lifecycle order, in one statement, so such a batch
// cannot deadlock with a concurrent one. Here tx1 moves one order
// draft→placed→paid (placed nets out and is not written: tx1 holds draft
// and paid), and tx2's placed→paid waits for paid until tx1 commits.
func TestStatusCountsGapFillAndConcurrentChangeDoNotDeadlock(t *testing.T) {
	t.Parallel()
	e := newProjEnv(t)
	change := func(from, to order.Status) Change {
		return Change{Before: order.State{Status: from, Version: 1}, After: order.State{Status: to, Version: 2}}
	}
	write := func(tx pgx.Tx, changes ...Change) error {
		b, batch := StatusCounts{}.NewBuilder(), &pgx.Batch{}
		b.AddOrder(changes)
		b.Queue(batch)
		return tx.SendBatch(e.ctx, batch).Close()
	}
	tx1, err := e.db.Projector.Begin(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx1.Rollback(e.ctx) }()
	if err := write(tx1, change(order.StatusDraft, order.StatusPlaced), change(order.StatusPlaced, order.StatusPaid)); err != nil {
		t.Fatalf("gap fill: %v", err)
	}

	done := make(chan error, 1)
	go func() {
		done <- pgx.BeginFunc(e.ctx, e.db.Projector, func(tx2 pgx.Tx) error {
			return write(tx2, change(order.StatusPlaced, order.StatusPaid))
		})
	}()
	e.awaitLockWait() // tx2 waits before tx1 commits
	if err := tx1.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("concurrent change: %v", err)
	}
	got := e.dump(StatusCounts{})["status_counts"]
	want := []string{"(cancelled,0)", "(delivered,0)", "(draft,-1)", "(paid,2)", "(placed,-1)", "(shipped,0)"}
	diffRows(t, "counts", map[string][]string{"status_counts": want}, map[string][]string{"status_counts": got})
}

// Two deliveries of an order's first event at once (a rebalance can briefly
// give a partition to two consumers) must count the order once. There is no
// versions row to lock yet, so the runtime must create one first.
func TestStatusCountsConcurrentFirstDeliveriesCountOnce(t *testing.T) {
	t.Parallel()
	e := newProjEnv(t)
	id, st := ulid.Make(), order.State{}
	e.decide(&st, id, commands.CreateOrder{OrderID: id, CustomerID: "alice", Currency: "EUR"}, time.Now())
	ev := e.readAll(0)[0]

	tx1, err := e.db.Projector.Begin(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx1.Rollback(e.ctx) }()
	if _, err := e.rt.apply(e.ctx, tx1, StatusCounts{}, 0, ev); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.rt.Handle(e.ctx, StatusCounts{}, 1, ev) }()
	e.awaitLockWait()
	if err := tx1.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := e.dump(StatusCounts{})["status_counts"]; !slices.Contains(got, "(draft,1)") {
		t.Fatalf("status_counts = %v, want draft counted once", got)
	}
}
