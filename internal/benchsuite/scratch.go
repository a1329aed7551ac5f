package benchsuite

import (
	"context"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
)

// scratchDB creates the empty database name on admin's server and returns
// its URL and a function that drops it (closing whatever is still
// connected).
func scratchDB(ctx context.Context, admin, name string) (string, func(), error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, err
	}
	defer func() { _ = conn.Close(ctx) }()
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", nil, fmt.Errorf("create database %s (the role must be allowed to create databases): %w", name, err)
	}
	u.Path = "/" + name
	drop := func() {
		ctx := context.WithoutCancel(ctx)
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer func() { _ = c.Close(ctx) }()
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}
