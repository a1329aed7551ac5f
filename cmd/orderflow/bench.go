package main

import (
	"context"
	"fmt"
	"os"
	"runtime"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/internal/benchreport"
	"github.com/orderflow/orderflow/internal/pg"
)

const benchUsage = `Usage: orderflow bench <subcommand> [flags]

On a database of their own (DATABASE_URL):
  seed      load N realistic orders' events with COPY, against a plain COPY of the same rows
  rebuild   rebuild every projection from the store, against a plain COPY of the event rows
  queries   drive the query API over HTTP with concurrent clients; p50/p95/p99 per workload
  drain     seed a backlog, publish it to an in-process Kafka, time fresh projector groups
            draining it, beside a rebuild of the same events

Against a running orderflow (--url):
  commands  the order lifecycle over HTTP, closed loop or open loop (--rate); commands/s,
            p50/p95/p99/p99.9/max, errors by status (--keyed: an Idempotency-Key each)
  pipeline  all roles at a fixed rate: 2xx → every read model fresh, 2xx → WebSocket frame,
            lag over time and back to zero; --find-max searches the highest sustainable rate

Everything at once, as make bench runs it:
  suite     each scenario on a fresh database and a fresh orderflow serve, pgbench as the
            bound in the same run; one table with ratios, JSON and an HTML chart in --out

seed, rebuild and queries run in that order on a fresh, migrated database (not
a production one: seed writes orders that never happened). Each prints its
configuration and a summary table; run 'orderflow bench <subcommand> --help'
for the flags.`

func runBench(ctx context.Context, args []string) error {
	return dispatch(ctx, "bench", benchUsage, args, map[string]func(context.Context, []string) error{
		"seed":     runBenchSeed,
		"rebuild":  runBenchRebuild,
		"queries":  runBenchQueries,
		"drain":    runBenchDrain,
		"commands": runBenchCommands,
		"pipeline": runBenchPipeline,
		"suite":    runBenchSuite,
	})
}

// serverInfo is the part of a benchmark's configuration that is the
// machine's: PostgreSQL version and memory, cores.
func serverInfo(ctx context.Context, db *pgxpool.Pool) (string, error) {
	var version, sharedBuffers, maxConns, database string
	err := db.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('shared_buffers'),
		current_setting('max_connections'), current_database()`).Scan(&version, &sharedBuffers, &maxConns, &database)
	if err != nil {
		return "", fmt.Errorf("server settings: %w", err)
	}
	return fmt.Sprintf("PostgreSQL %s (database %s), shared_buffers %s, max_connections %s; client %d CPUs, GOMAXPROCS %d, %s",
		version, database, sharedBuffers, maxConns, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version()), nil
}

// rate is n per second of d.
func rate(n int64, d float64) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d
}

// benchServerInfo is serverInfo for a database URL.
func benchServerInfo(ctx context.Context, url string) (string, error) {
	db, err := pg.ConnectOwner(ctx, url, pg.Options{MaxConns: 1, ApplicationName: "orderflow bench"})
	if err != nil {
		return "", err
	}
	defer db.Close()
	return serverInfo(ctx, db)
}

// writeReport prints rep's table and, when dir is set, writes it there as
// JSON and HTML.
func writeReport(rep benchreport.Report, dir, base string) error {
	if err := rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	if dir == "" {
		return nil
	}
	paths, err := rep.WriteFiles(dir, base)
	for _, p := range paths {
		fmt.Fprintf(os.Stderr, "wrote %s\n", p)
	}
	return err
}

// clientInfo is the load generator's side of the machine, for benchmarks
// that reach the server over HTTP only.
func clientInfo() string {
	return fmt.Sprintf("client %d CPUs, GOMAXPROCS %d, %s", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
}
