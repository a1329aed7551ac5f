package commands

import (
	"embed"
	"io/fs"

	"github.com/orderflow/orderflow/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the command side's migrations. It owns no table any
// more: idempotency keys live in the event store (00002 moved them there).
func Migrations() fs.FS { return migrate.Dir(migrationFiles, "migrations") }
