package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pg"
)

const eventsUsage = `Usage: orderflow events <subcommand> [flags]

  export [flags]             write events in global order as NDJSON or CSV (see export --help)
  partitions                 list the event table's monthly partitions
  detach --before YYYY-MM    detach (not drop) partitions of months before YYYY-MM, for archiving`

func runEvents(ctx context.Context, args []string) error {
	return dispatch(ctx, "events", eventsUsage, args, map[string]func(context.Context, []string) error{
		"export":     runExport,
		"partitions": runPartitions,
		"detach":     runDetach,
	})
}

func runPartitions(ctx context.Context, args []string) error {
	var c common
	f := newFlags("events partitions", "Lists the event table's monthly partitions with row estimates.")
	c.register(f)
	if err := f.parse(args, func() { c.validate(f, false, pg.Query) }); err != nil {
		return err
	}
	pool, err := pg.Connect(ctx, c.login(pg.Query), pg.Options{MaxConns: 2, ApplicationName: "orderflow events partitions"})
	if err != nil {
		return err
	}
	defer pool.Close()
	parts, err := eventstore.New(pool).Partitions(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tMONTH\tROWS (ESTIMATE)")
	for _, p := range parts {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", p.Name, p.Month.Format("2006-01"), p.Rows)
	}
	return tw.Flush()
}

func runDetach(ctx context.Context, args []string) error {
	var (
		c      common
		before string
	)
	f := newFlags("events detach", "Detaches partitions of months before --before: their events leave every read and stay in the database as plain tables to dump and drop.")
	c.register(f)
	f.StringVar(&before, "before", "", "first month to keep, YYYY-MM (required)")
	var month time.Time
	if err := f.parse(args, func() {
		c.validate(f, true)
		var err error
		month, err = time.Parse("2006-01", before)
		f.check(err != nil, "--before=%q: want a month as YYYY-MM", before)
	}); err != nil {
		return err
	}
	// Detaching is DDL: it needs the schema owner, which no serving role is.
	pool, err := pg.ConnectOwner(ctx, c.databaseURL, pg.Options{MaxConns: 2, ApplicationName: "orderflow events detach"})
	if err != nil {
		return err
	}
	defer pool.Close()
	done, err := eventstore.New(pool).DetachPartitionsBefore(ctx, month, time.Now())
	for _, name := range done {
		fmt.Printf("detached %s (still in the database as a table: pg_dump -t %s, then DROP TABLE %s)\n", name, name, name)
	}
	if len(done) == 0 && err == nil {
		fmt.Println("nothing to detach")
	}
	return err
}
