package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/seed"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
)

// rebuildCompareTable is the COPY bound of `bench rebuild`. UNLOGGED: the
// strictest bound (no WAL at all), stricter than what a rebuild writes into
// (logged shadow tables: measured faster end to end than loading UNLOGGED
// tables and rewriting them with SET LOGGED).
const rebuildCompareTable = "bench_copy"

func runBenchRebuild(ctx context.Context, args []string) error {
	var (
		c          common
		cpuProfile string
		copyRuns   int
		each       bool
	)
	f := newFlags("bench rebuild", "Rebuilds every projection from the event store (as `orderflow projections rebuild all`) and compares the rate with a plain COPY of the same event rows into an unindexed UNLOGGED table.")
	c.register(f)
	f.string(&cpuProfile, "cpuprofile", "ORDERFLOW_BENCH_CPUPROFILE", "", "write a Go CPU profile of the rebuilds to this file")
	f.bool(&each, "each", "ORDERFLOW_BENCH_EACH", false, "rebuild the projections one after the other (one pass over the store each) instead of all from one pass")
	f.int(&copyRuns, "copy-runs", "ORDERFLOW_BENCH_COPY_RUNS", 2, "plain COPY runs: 1 before the rebuilds, 2 before and after")
	if err := f.parse(args, func() {
		c.validate(f, true)
		f.check(copyRuns < 1 || copyRuns > 2, "--copy-runs must be 1 or 2")
	}); err != nil {
		return err
	}
	log := c.logger(os.Stderr)
	// As `orderflow projections rebuild`: the owner reads, loads and swaps.
	owner, err := pg.ConnectOwner(ctx, c.databaseURL, pg.Options{MaxConns: 16, ApplicationName: "orderflow bench rebuild"})
	if err != nil {
		return err
	}
	defer owner.Close()
	info, err := serverInfo(ctx, owner)
	if err != nil {
		return err
	}
	store := eventstore.New(owner)
	head, err := store.HeadPosition(ctx)
	if err != nil {
		return err
	}
	var orders int64
	if err := owner.QueryRow(ctx, `SELECT count(DISTINCT stream_id) FROM events`).Scan(&orders); err != nil {
		return err
	}
	mode := "one pass over the store for all (RebuildAll)"
	if each {
		mode = "one rebuild per projection (Rebuild each)"
	}
	fmt.Printf("bench rebuild: %d events of %d orders (head %d), projections %s, %s; COPY bound: UNLOGGED %s, %d run(s)\n%s\n",
		head, orders, head, names(projections.All()), mode, rebuildCompareTable, copyRuns, info)

	var copies []time.Duration
	copyOnce := func() error {
		d, n, err := copyEvents(ctx, owner, head)
		if err != nil {
			return err
		}
		fmt.Printf("plain COPY of %d event rows into UNLOGGED %s: %s (%.0f rows/s)\n", n, rebuildCompareTable, d.Round(time.Millisecond), rate(n, d.Seconds()))
		copies = append(copies, d)
		return nil
	}
	if err := copyOnce(); err != nil {
		return err
	}

	rebuildGC()
	rt, err := projections.NewRuntime(owner, store, order.NewRegistry(), nil, log)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		pf, err := os.Create(cpuProfile) // #nosec G304 -- the operator names the profile file (--cpuprofile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
	}
	type result struct {
		name string
		st   projections.RebuildStats
	}
	var results []result
	start := time.Now()
	if each {
		for _, p := range projections.All() {
			st, err := rt.Rebuild(ctx, owner, p, nil)
			if err != nil {
				pprof.StopCPUProfile()
				return err
			}
			results = append(results, result{p.Name(), st})
			fmt.Fprintf(os.Stderr, "rebuilt %s: %d events in %s\n", p.Name(), st.Events, st.Load.Round(time.Millisecond))
		}
	} else {
		sts, err := rt.RebuildAll(ctx, owner, projections.All(), nil)
		if err != nil {
			pprof.StopCPUProfile()
			return err
		}
		for i, p := range projections.All() {
			results = append(results, result{p.Name(), sts[i]})
		}
	}
	all := time.Since(start)
	pprof.StopCPUProfile()

	if copyRuns == 2 {
		if err := copyOnce(); err != nil {
			return err
		}
	}
	var copyTotal time.Duration
	for _, d := range copies {
		copyTotal += d
	}
	copyRate := rate(head*int64(len(copies)), copyTotal.Seconds())

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PROJECTION\tORDERS\tEVENTS\tLOAD s\tEVENTS/S (load)\t/ COPY\tTOTAL s\tEVENTS/S (total)\t")
	var events int64
	if !each {
		fmt.Fprintln(tw, "(one pass: LOAD is shared, TOTAL runs to each projection's swap)\t\t\t\t\t\t\t\t")
	}
	for _, r := range results {
		events += r.st.Events
		lr := rate(r.st.Events, r.st.Load.Seconds())
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.0f\t%.2f\t%.1f\t%.0f\t\n", r.name, r.st.Orders, r.st.Events,
			r.st.Load.Seconds(), lr, lr/copyRate, r.st.Total.Seconds(), rate(r.st.Events, r.st.Total.Seconds()))
	}
	allRate := rate(head, all.Seconds())
	fmt.Fprintf(tw, "all (the store once into every read model)\t%d\t%d\t\t\t%.2f\t%.1f\t%.0f\t\n", orders, head, allRate/copyRate, all.Seconds(), allRate)
	fmt.Fprintf(tw, "plain COPY, UNLOGGED, mean of %d\t\t%d\t%.1f\t%.0f\t1.00\t\t\t\n", len(copies), head, copyTotal.Seconds()/float64(len(copies)), copyRate)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Printf("events folded per second over all projections: %.0f (%d folds in %s)\n", rate(events, all.Seconds()), events, all.Round(time.Millisecond))
	return nil
}

func names(ps []projections.Projection) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Name())
	}
	return strings.Join(s, ",")
}

// copyEvents pipes the events up to head, in the order a rebuild reads them,
// from COPY TO into COPY FROM of an UNLOGGED table without indexes: the
// bound of reading and writing those rows. It drops the table afterwards.
func copyEvents(ctx context.Context, owner *pgxpool.Pool, head int64) (time.Duration, int64, error) {
	if err := seed.CreateCompareTable(ctx, owner, rebuildCompareTable, false); err != nil {
		return 0, 0, err
	}
	defer func() { _ = seed.DropCompareTable(context.WithoutCancel(ctx), owner, rebuildCompareTable) }()
	src, err := owner.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer src.Release()
	dst, err := owner.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer dst.Release()
	const cols = "stream_id, version, event_id, stream_type, event_type, schema_version, data, metadata, recorded_at, position"
	pr, pw := io.Pipe()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := src.Conn().PgConn().CopyTo(ctx, pw,
			fmt.Sprintf("COPY (SELECT %s FROM events WHERE position <= %d ORDER BY stream_id, version) TO STDOUT (FORMAT binary)", cols, head))
		pw.CloseWithError(err)
		errc <- err
	}()
	tag, err := dst.Conn().PgConn().CopyFrom(ctx, pr, fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", rebuildCompareTable, cols))
	if err != nil {
		_ = pr.CloseWithError(err) // always nil for a pipe
		<-errc
		return 0, 0, fmt.Errorf("copy events: %w", err)
	}
	if err := <-errc; err != nil {
		return 0, 0, fmt.Errorf("copy events out: %w", err)
	}
	return time.Since(start), tag.RowsAffected(), nil
}
