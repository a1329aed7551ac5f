// Package migrate applies the project's versioned SQL migrations with goose.
//
// Each package that owns tables ships its own embedded migration set (its
// migrations/ subpackage) with its own version table; internal/schema lists
// them. Sets are applied in the order given; a Postgres session lock lets
// several processes start at once without racing.
package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

// Set is one package's migrations.
type Set struct {
	Name string // names the version table (VersionTable)
	FS   fs.FS  // *.sql files at its root
}

// VersionTable is the set's goose version table, goose_<name>. Every
// serving role may read it (each set's roles migration grants it), so that
// readiness can tell whether the schema is current without the owner.
func (s Set) VersionTable() string { return "goose_" + s.Name }

// State of one migration.
type State struct {
	Set     string
	Version int64
	File    string
	Applied bool
}

func provider(db *sql.DB, s Set) (*goose.Provider, error) {
	store, err := database.NewStore(database.DialectPostgres, s.VersionTable())
	if err != nil {
		return nil, err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	return goose.NewProvider("", db, s.FS,
		goose.WithStore(store),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
}

// Up applies every pending migration of every set, in order.
func Up(ctx context.Context, db *sql.DB, sets ...Set) error {
	for _, s := range sets {
		p, err := provider(db, s)
		if err != nil {
			return fmt.Errorf("migrations %s: %w", s.Name, err)
		}
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("migrate %s up: %w", s.Name, err)
		}
	}
	return nil
}

// Status lists every migration and whether it is applied.
func Status(ctx context.Context, db *sql.DB, sets ...Set) ([]State, error) {
	var out []State
	for _, s := range sets {
		p, err := provider(db, s)
		if err != nil {
			return nil, fmt.Errorf("migrations %s: %w", s.Name, err)
		}
		st, err := p.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("migration status %s: %w", s.Name, err)
		}
		for _, m := range st {
			out = append(out, State{Set: s.Name, Version: m.Source.Version, File: m.Source.Path, Applied: m.State == goose.StateApplied})
		}
	}
	return out, nil
}

// Pending reports whether any set has migrations not yet applied.
func Pending(ctx context.Context, db *sql.DB, sets ...Set) (bool, error) {
	st, err := Status(ctx, db, sets...)
	if err != nil {
		return false, err
	}
	for _, s := range st {
		if !s.Applied {
			return true, nil
		}
	}
	return false, nil
}
