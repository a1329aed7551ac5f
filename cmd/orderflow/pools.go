package main

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/internal/pg"
)

// dbRoles are the database roles this process's roles connect as, one pool
// each: api commands as Command and queries as Query, the hub reads the
// store as Query, the relay and the projector as their own.
func (c *serveConfig) dbRoles() []pg.Role {
	var out []pg.Role
	add := func(r pg.Role) {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if c.hasRole("api") {
		add(pg.Command)
		add(pg.Query)
	}
	if c.hasRole("relay") {
		add(pg.Relay)
	}
	if c.hasRole("projector") {
		add(pg.Projector)
	}
	if c.hasRole("hub") {
		add(pg.Query)
	}
	return out
}

// servingPool opens a pool logged in as role r, with the serving statement
// timeout.
func (c *serveConfig) servingPool(ctx context.Context, r pg.Role, maxConns int, name string) (*pgxpool.Pool, error) {
	l := c.login(r)
	var err error
	if l.URL, err = withStatementTimeout(l.URL, c.dbStatementTimeout); err != nil {
		return nil, err
	}
	return pg.Connect(ctx, l, pg.Options{MaxConns: poolSize(maxConns), ApplicationName: name, Observer: c.dbBreaker})
}
