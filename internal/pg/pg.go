// Package pg opens PostgreSQL connections the way every orderflow component
// needs them: serving pools log in as their component's role (Login), admin
// tools and migrations as the schema owner (ConnectOwner).
//
// The roles are NOLOGIN group roles the migrations create and grant to
// (eventstore/migrations/00005_roles.sql); an operator creates the LOGIN
// roles and grants each one its group. README, "Database roles", is the
// operator's view.
package pg

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Role is a serving component's group role.
type Role string

// The serving roles, as the migrations create them.
const (
	// Command calls the append functions, reads events, keeps partitions
	// near now, and reads, writes and expires idempotency keys.
	Command Role = "orderflow_command"
	// Relay reads events and writes its checkpoint.
	Relay Role = "orderflow_relay"
	// Projector reads events (gap fill) and writes the read models and
	// their checkpoints.
	Projector Role = "orderflow_projector"
	// Query reads the read models and events.
	Query Role = "orderflow_query"
)

// ServingRoles lists every serving role.
func ServingRoles() []Role { return []Role{Command, Relay, Projector, Query} }

// Login is how a serving connection logs in as its Role.
type Login struct {
	Role Role
	// URL is the PostgreSQL URL to log in with: in production a login role
	// that is a member of Role (and neither a superuser nor the schema
	// owner); with SetRole, the schema owner's.
	URL string
	// SetRole is the development fallback: log in with the owner's URL and
	// switch every connection to Role with SET ROLE. The privileges are
	// Role's, but the credentials are the owner's and a RESET ROLE would
	// get them back, so production sets a URL per role instead.
	SetRole bool
}

// Options tune a pool. The zero value is a pool of pgx's default size.
type Options struct {
	MaxConns int32
	// ApplicationName shows in pg_stat_activity.
	ApplicationName string
	// Observer, if set, is told of every acquire, query and batch and its
	// outcome (observe.go).
	Observer Observer
}

// Connect opens a serving pool for l and checks, on one connection, that it
// holds l.Role's privileges and neither a superuser's nor the schema
// owner's: a serving process refuses to start with the owner's rights.
func Connect(ctx context.Context, l Login, o Options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(l.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database url for %s: %w", l.Role, redact(err))
	}
	o.apply(cfg)
	if l.SetRole {
		set := setRoleSQL(l.Role)
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, set)
			return err
		}
	}
	pool, err := open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database login for %s: %w", l.Role, err)
	}
	if err := checkRole(ctx, pool, l.Role); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// ConnectOwner opens a pool with url's role unchanged: the schema owner's,
// for migrations and admin commands (DDL, rebuild swaps, detaching
// partitions, loading history). Never for serving.
func ConnectOwner(ctx context.Context, url string, o Options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", redact(err))
	}
	o.apply(cfg)
	return open(ctx, cfg)
}

// Conn opens one connection for l outside any pool (the relay's leadership
// session). It is not checked: the pool of the same login is.
func Conn(ctx context.Context, l Login, applicationName string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(l.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database url for %s: %w", l.Role, redact(err))
	}
	if applicationName != "" {
		cfg.RuntimeParams["application_name"] = applicationName
	}
	if l.SetRole {
		set := setRoleSQL(l.Role)
		cfg.AfterConnect = func(ctx context.Context, c *pgconn.PgConn) error {
			return c.Exec(ctx, set).Close()
		}
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// OpenSQL opens a database/sql handle (for goose) with the owner's rights.
func OpenSQL(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", redact(err))
	}
	return stdlib.OpenDB(*cfg), nil
}

func (o Options) apply(cfg *pgxpool.Config) {
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if o.ApplicationName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = o.ApplicationName
	}
	if o.Observer != nil {
		cfg.ConnConfig.Tracer = observer{o.Observer}
	}
}

func open(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
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

func setRoleSQL(r Role) string { return "SET ROLE " + pgx.Identifier{string(r)}.Sanitize() }

// checkRole refuses a login that is a superuser or can act as the owner of
// the events table, or that lacks role's privileges. Membership is checked
// with the rights the session has now (current_user): after the
// development fallback's SET ROLE, that is role itself.
func checkRole(ctx context.Context, pool *pgxpool.Pool, role Role) error {
	var (
		user              string
		super, isOwner    bool
		exists, hasPrivOf bool
	)
	err := pool.QueryRow(ctx, `
		SELECT current_user::text, r.rolsuper,
		       coalesce(pg_has_role(current_user, c.relowner, 'MEMBER'), false),
		       g.oid IS NOT NULL,
		       CASE WHEN g.oid IS NOT NULL THEN pg_has_role(current_user, g.oid, 'USAGE') ELSE false END
		  FROM pg_roles r
		  LEFT JOIN pg_class c ON c.oid = to_regclass('public.events')
		  LEFT JOIN pg_roles g ON g.rolname = $1
		 WHERE r.rolname = current_user`, string(role)).Scan(&user, &super, &isOwner, &exists, &hasPrivOf)
	if err != nil {
		return fmt.Errorf("database login for %s: check its role: %w", role, err)
	}
	switch {
	case super:
		return fmt.Errorf("database login for %s: %q is a superuser; serving connections must log in as a role with %s's privileges only", role, user, role)
	case isOwner:
		return fmt.Errorf("database login for %s: %q owns the schema (or may act as its owner); serving connections must not log in as the owner", role, user)
	case !exists:
		return fmt.Errorf("database login for %s: role %s does not exist; apply the migrations first (orderflow migrate up)", role, role)
	case !hasPrivOf:
		return fmt.Errorf("database login for %s: %q is not a member of %s (GRANT %s TO %s)", role, user, role, role, pgx.Identifier{user}.Sanitize())
	}
	return nil
}

// redact drops the parser's message, which may quote the URL and its password.
func redact(error) error {
	return fmt.Errorf("malformed connection string (not shown: it may hold a password)")
}
