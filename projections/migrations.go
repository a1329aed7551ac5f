package projections

import (
	"embed"
	"io/fs"

	"github.com/orderflow/orderflow/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the read models' tables.
func Migrations() fs.FS { return migrate.Dir(migrationFiles, "migrations") }
