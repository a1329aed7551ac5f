package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/seed"
	"github.com/orderflow/orderflow/order"
)

// seedCompareTable receives the same batches as events in `bench seed`.
const seedCompareTable = "bench_seed_copy"

func runBenchSeed(ctx context.Context, args []string) error {
	var (
		c       common
		cfg     seed.Config
		seedVal int
		compare bool
	)
	f := newFlags("bench seed", "Loads N orders' events (COPY, one writer: the append lock serializes writers) and compares with a plain COPY of the same rows into an unindexed, untriggered, logged table.")
	c.register(f)
	f.int(&cfg.Orders, "orders", "ORDERFLOW_BENCH_ORDERS", 0, "orders to create (required)")
	f.int(&cfg.Customers, "customers", "ORDERFLOW_BENCH_CUSTOMERS", 0, "distinct customers, skewed; 0 means orders/10")
	f.int(&cfg.Days, "days", "ORDERFLOW_BENCH_DAYS", 60, "orders are created over the last this many days")
	f.int(&cfg.Batch, "batch", "ORDERFLOW_BENCH_BATCH", 10000, "events per COPY")
	f.int(&seedVal, "seed", "ORDERFLOW_BENCH_SEED", 1, "random seed")
	f.bool(&compare, "compare", "ORDERFLOW_BENCH_COMPARE", true, "also COPY every batch into "+seedCompareTable+" (dropped at the end) and report the ratio")
	if err := f.parse(args, func() {
		c.validate(f, true)
		f.check(cfg.Orders < 1, "--orders is required (at least 1)")
		f.check(cfg.Days < 1, "--days must be at least 1")
		f.check(cfg.Batch < 1, "--batch must be at least 1")
		f.check(seedVal < 1, "--seed must be at least 1")
	}); err != nil {
		return err
	}
	cfg.Seed = uint64(seedVal) // #nosec G115 -- --seed is validated ≥ 1 above
	// The owner writes: seeding copies rows straight into the events table
	// and creates past months' partitions, which no serving role may.
	owner, err := pg.ConnectOwner(ctx, c.databaseURL, pg.Options{MaxConns: 4, ApplicationName: "orderflow bench seed"})
	if err != nil {
		return err
	}
	defer owner.Close()
	info, err := serverInfo(ctx, owner)
	if err != nil {
		return err
	}
	var before int64
	if err := owner.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM events`).Scan(&before); err != nil {
		return err
	}

	target := seed.Target{Events: owner, Partitions: eventstore.New(owner)}
	if compare {
		if err := seed.CreateCompareTable(ctx, owner, seedCompareTable, true); err != nil {
			return err
		}
		defer func() { _ = seed.DropCompareTable(context.WithoutCancel(ctx), owner, seedCompareTable) }()
		target.Compare, target.CompareTable = owner, pgx.Identifier{seedCompareTable}
	}
	fmt.Printf("bench seed: orders=%d customers=%d days=%d batch=%d seed=%d writer=owner compare=%t (store head before: %d)\n%s\n",
		cfg.Orders, max(cfg.Customers, cfg.Orders/10, 1), cfg.Days, cfg.Batch, cfg.Seed, compare, before, info)

	start := time.Now()
	last := start
	res, err := seed.Load(ctx, order.NewRegistry(), cfg, target, func(events, orders int64) {
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "seed: %d orders, %d events, %.0f events/s so far\n",
				orders, events, rate(events, time.Since(start).Seconds()))
		}
	})
	if err != nil {
		return err
	}
	return printSeed(ctx, owner, res, compare)
}

func printSeed(ctx context.Context, owner *pgxpool.Pool, res seed.Result, compare bool) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "COPY INTO\tROWS\tBATCHES\tSECONDS\tROWS/S\t")
	evRate := rate(res.Events, res.EventsCopy.Seconds())
	fmt.Fprintf(tw, "events (partitioned, 4 indexes, append-lock trigger, logged)\t%d\t%d\t%.1f\t%.0f\t\n", res.Events, res.Batches, res.EventsCopy.Seconds(), evRate)
	if compare {
		fmt.Fprintf(tw, seedCompareTable+" (no index, no trigger, logged)\t%d\t%d\t%.1f\t%.0f\t\n", res.Events, res.Batches, res.CompareCopy.Seconds(), rate(res.Events, res.CompareCopy.Seconds()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if compare {
		fmt.Printf("ratio events / plain COPY: %.2f\n", evRate/rate(res.Events, res.CompareCopy.Seconds()))
	}
	fmt.Printf("wall: %d orders, %d events in %s (%.0f events/s including generation%s)\n",
		res.Orders, res.Events, res.Wall.Round(time.Millisecond), rate(res.Events, res.Wall.Seconds()),
		map[bool]string{true: " and the compare COPYs", false: ""}[compare])

	statuses := []order.Status{order.StatusDraft, order.StatusPlaced, order.StatusPaid, order.StatusShipped, order.StatusDelivered, order.StatusCancelled}
	fmt.Print("orders by final status:")
	for _, s := range statuses {
		fmt.Printf(" %s %.1f%%", s, 100*float64(res.ByStatus[s])/float64(res.Orders))
	}
	per := slices.Clone(res.PerCustomer)
	slices.Sort(per)
	buyers := 0
	for _, n := range per {
		if n > 0 {
			buyers++
		}
	}
	fmt.Printf("\ncustomers: %d with orders of %d; orders per customer p50 %d, p99 %d, max %d\n",
		buyers, len(per), per[len(per)/2], per[len(per)*99/100], per[len(per)-1])
	var size string
	if err := owner.QueryRow(ctx, `SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits WHERE inhparent = 'events'::regclass`).Scan(&size); err != nil {
		return err
	}
	fmt.Printf("events table now %s (all partitions, with indexes)\n", size)
	return nil
}
