package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/orderflow/orderflow/internal/migrate"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/schema"
)

func runMigrate(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "up" && args[0] != "status") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(os.Stderr, "Usage: orderflow migrate up|status [flags]\n\n  up      apply every pending migration (safe to run from several processes at once)\n  status  list migrations and whether each is applied")
			return nil
		}
		fmt.Fprintln(os.Stderr, "orderflow migrate: want a subcommand: up or status (see orderflow migrate --help)")
		return errUsage
	}
	sub := args[0]
	var c common
	f := newFlags("migrate "+sub, "Applies (up) or lists (status) the embedded SQL migrations.")
	c.register(f)
	if err := f.parse(args[1:], func() { c.validate(f, true) }); err != nil {
		return err
	}
	db, err := pg.OpenSQL(c.databaseURL)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if sub == "up" {
		if err := migrate.Up(ctx, db, schema.Sets()...); err != nil {
			return err
		}
		fmt.Println("migrations applied")
		return nil
	}
	states, err := migrate.Status(ctx, db, schema.Sets()...)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SET\tVERSION\tFILE\tSTATE")
	for _, s := range states {
		state := "pending"
		if s.Applied {
			state = "applied"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.Set, s.Version, s.File, state)
	}
	return tw.Flush()
}

// ensureMigrated applies migrations with the owner's rights.
func ensureMigrated(ctx context.Context, url string) error {
	db, err := pg.OpenSQL(url)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	return migrate.Up(ctx, db, schema.Sets()...)
}
