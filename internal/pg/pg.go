// Package pg opens PostgreSQL connection pools the way every orderflow role
// needs them: the application pool drops to the least-privileged role.
package pg

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// AppRole is the least-privileged role created by the migrations. Serving
// pools SET ROLE to it, so a bug cannot update an event or drop a table even
// when DATABASE_URL names the schema owner.
const AppRole = "orderflow_app"

// Options tune a pool. The zero value is a pool of pgx's default size that
// switches to AppRole.
type Options struct {
	MaxConns int32
	// KeepOwnerRole skips SET ROLE: for migrations and admin commands only.
	KeepOwnerRole bool
	// ApplicationName shows in pg_stat_activity.
	ApplicationName string
}

// Connect opens a pool and checks it can reach the server.
func Connect(ctx context.Context, url string, o Options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", redact(err))
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if o.ApplicationName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = o.ApplicationName
	}
	if !o.KeepOwnerRole {
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, "SET ROLE "+AppRole)
			return err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("reach postgres: %w", err)
	}
	return pool, nil
}

// OpenSQL opens a database/sql handle (for goose) with the owner's rights.
func OpenSQL(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", redact(err))
	}
	return stdlib.OpenDB(*cfg), nil
}

// redact drops the parser's message, which may quote the URL and its password.
func redact(error) error {
	return fmt.Errorf("malformed connection string (not shown: it may hold a password)")
}
