package projections

import (
	"context"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
)

// Change is one event of one order with the order's state around it.
type Change struct {
	Before   order.State // zero for the order's first event
	After    order.State
	Event    order.Event
	Recorded eventstore.RecordedEvent
}

// Projection maintains one read model.
type Projection interface {
	// Name is the projection's identifier: its consumer group, its
	// <name>_versions table, and the argument of `projections rebuild`.
	Name() string
	// Tables are the tables the projection owns besides <name>_versions;
	// a rebuild builds shadow copies of exactly these. List them in the
	// order Queue writes them: the rebuild's swap locks them in this order
	// (after the versions table), as the live path does, so the two cannot
	// deadlock.
	Tables() []string
	// NewBuilder returns an empty accumulator of changes, for one live
	// batch or one bulk rebuild.
	NewBuilder() Builder
}

// Builder accumulates the changes of many orders in memory and writes what
// they add up to: onto the live tables, inside a batch's transaction
// (Queue), or into a rebuild's empty shadow tables (Flush). Both sinks write
// the same accumulated rows, which is why a rebuilt model equals the live one.
// A Builder is used by one goroutine.
type Builder interface {
	// AddOrder takes changes of one order, in version order: every change
	// of the order (rebuild), or those of one batch (live). An order is
	// added at most once between two writes.
	AddOrder(changes []Change)
	// Queue queues on b the statements that add what was accumulated to
	// the tables and forgets it; the batch's transaction sends them in one
	// round trip. Unqualified table names: a rebuild's catch-up runs the
	// same statements with the shadow schema first on the search path.
	// Rows that several orders share (counters) are written in one fixed
	// key order, and tables in Tables order, so concurrent batches cannot
	// deadlock; rows of one order are guarded by that order's versions row.
	Queue(b *pgx.Batch)
	// Flush copies what was accumulated into the tables of schema and
	// forgets it. final is set on the last call: aggregates flush then.
	Flush(ctx context.Context, db Copier, schema string, final bool) error
}

// Copier is what a builder needs to write: pgx's COPY FROM.
type Copier interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`)

func checkName(p Projection) error {
	if !nameRE.MatchString(p.Name()) {
		return fmt.Errorf("projection name %q: want lower-case snake_case", p.Name())
	}
	for _, t := range p.Tables() {
		if !nameRE.MatchString(t) {
			return fmt.Errorf("projection %s: table name %q: want lower-case snake_case", p.Name(), t)
		}
	}
	return nil
}

func versionsTable(p Projection) string { return p.Name() + "_versions" }
