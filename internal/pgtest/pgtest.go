// Package pgtest gives each test its own freshly migrated PostgreSQL database.
//
// It needs a server: DATABASE_URL (a role allowed to create databases and
// roles). `make test` starts a project-local cluster and sets it. Without one
// the test fails with a message saying so; it never skips.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/internal/migrate"
	"github.com/orderflow/orderflow/internal/pg"
)

// DB is a throwaway database.
type DB struct {
	URL   string        // owner's URL of the new database
	Pool  *pgxpool.Pool // application pool (role orderflow_app)
	Owner *pgxpool.Pool // owner pool, for assertions and admin steps
}

// AdminURL returns the server URL tests use, or fails the test.
func AdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		t.Fatal("pgtest: DATABASE_URL is not set. Run `make test` (it starts a project-local PostgreSQL) " +
			"or point DATABASE_URL at a server where this role may CREATE DATABASE and CREATE ROLE.")
	}
	return u
}

// New creates a database, applies the given migration sets and returns pools
// to it. Everything is dropped when the test ends.
func New(t testing.TB, sets ...migrate.Set) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := AdminURL(t)

	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: cannot reach PostgreSQL at DATABASE_URL: %v", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "orderflow_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer func() { _ = c.Close(ctx) }()
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})

	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("pgtest: DATABASE_URL must be a URL (postgres://...): %v", err)
	}
	u.Path = "/" + name
	db := &DB{URL: u.String()}

	sqlDB, err := pg.OpenSQL(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sqlDB.Close() }()
	if err := migrate.Up(ctx, sqlDB, sets...); err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	if db.Owner, err = pg.Connect(ctx, db.URL, pg.Options{KeepOwnerRole: true}); err != nil {
		t.Fatal(err)
	}
	if db.Pool, err = pg.Connect(ctx, db.URL, pg.Options{MaxConns: 32}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Pool.Close(); db.Owner.Close() })
	return db
}

// Rows returns every row of each table as text, sorted, in one snapshot:
// comparing two read models row by row is comparing these. Times print in
// UTC so that the session's time zone cannot make equal rows differ.
func (db *DB) Rows(t testing.TB, tables ...string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := make(map[string][]string, len(tables))
	err := pgx.BeginFunc(ctx, db.Owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SET LOCAL TimeZone = 'UTC'"); err != nil {
			return err
		}
		for _, table := range tables {
			rows, err := tx.Query(ctx, `SELECT r::text FROM `+pgx.Identifier{table}.Sanitize()+` r ORDER BY r::text COLLATE "C"`)
			if err != nil {
				return err
			}
			if out[table], err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pgtest: dump %v: %v", tables, err)
	}
	return out
}
