package commands

import (
	"embed"
	"io/fs"

	"github.com/orderflow/orderflow/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the command side's tables (idempotency keys).
func Migrations() fs.FS { return migrate.Dir(migrationFiles, "migrations") }
