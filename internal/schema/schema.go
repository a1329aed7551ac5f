// Package schema is the one list of the database's migration sets, in the
// order they apply: `orderflow migrate`, `orderflow serve` and every test
// database (internal/pgtest) use it.
//
// Each set keeps its own goose version table (goose_<name>), so the event
// store's schema history knows nothing of read models. The relay's and the
// read models' sets grant to roles the event store's set creates, hence the
// order.
package schema

import (
	commandsmig "github.com/orderflow/orderflow/commands/migrations"
	eventstoremig "github.com/orderflow/orderflow/eventstore/migrations"
	auditmig "github.com/orderflow/orderflow/internal/audit/migrations"
	"github.com/orderflow/orderflow/internal/migrate"
	piimig "github.com/orderflow/orderflow/internal/pii/migrations"
	projectionsmig "github.com/orderflow/orderflow/projections/migrations"
	relaymig "github.com/orderflow/orderflow/streams/relay/migrations"
)

// Sets returns every migration set, in the order they apply.
func Sets() []migrate.Set {
	return []migrate.Set{
		{Name: "eventstore", FS: eventstoremig.FS()},
		{Name: "commands", FS: commandsmig.FS()},
		{Name: "pii", FS: piimig.FS()},
		{Name: "relay", FS: relaymig.FS()},
		{Name: "projections", FS: projectionsmig.FS()},
		{Name: "audit", FS: auditmig.FS()},
	}
}
