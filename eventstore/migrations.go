package eventstore

import (
	"embed"
	"io/fs"

	"github.com/orderflow/orderflow/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the event store's SQL migrations (goose format).
func Migrations() fs.FS { return migrate.Dir(migrationFiles, "migrations") }
