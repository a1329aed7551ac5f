// Package pgbench runs PostgreSQL's pgbench as the machine's bound for
// appends: the same rows the event store writes, inserted into a plain
// table shaped like the events table (same indexes, no partitioning, no
// trigger), by the same number of clients, measured in the same run as
// what it bounds.
package pgbench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Table is where pgbench inserts. SetupSQL (re)creates it from the events
// table, so the database must be migrated.
const Table = "bench_raw"

// SetupSQL drops and creates Table like events, with its keys and indexes.
const SetupSQL = `
	DROP TABLE IF EXISTS bench_raw;
	CREATE TABLE bench_raw (LIKE events INCLUDING DEFAULTS);
	ALTER TABLE bench_raw ADD PRIMARY KEY (stream_id, version), ADD UNIQUE (stream_id, event_id);
	CREATE INDEX ON bench_raw (position);
	CREATE INDEX ON bench_raw (recorded_at);`

// streamID is a time-ordered uuid like the store's ULIDs, so neither side
// pays for random index inserts.
const streamID = `(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || substr(md5(random()::text), 1, 20))::uuid`

// Options says how pgbench runs. Exactly one of Transactions and Duration
// is set.
type Options struct {
	Clients int
	// Transactions per client (pgbench -t), or Duration of the run (-T,
	// whole seconds, at least 1).
	Transactions int
	Duration     time.Duration
	// RowsPerTx is how many rows one INSERT (one transaction) writes.
	// Default 1.
	RowsPerTx int
}

// Result is pgbench's figure and what it ran with.
type Result struct {
	TPS float64
	// Clients is fewer than asked when the server had not the connections
	// to spare; Capped says so.
	Clients int
	Capped  bool
	Output  string
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// Inserts (re)creates Table and runs pgbench against url with o.
func Inserts(ctx context.Context, url string, o Options) (Result, error) {
	bin, err := Path()
	if err != nil {
		return Result{}, err
	}
	if o.RowsPerTx == 0 {
		o.RowsPerTx = 1
	}
	if (o.Transactions > 0) == (o.Duration > 0) || o.Clients < 1 {
		return Result{}, fmt.Errorf("pgbench: want clients ≥ 1 and one of transactions and duration")
	}
	if err := Exec(ctx, url, SetupSQL); err != nil {
		return Result{}, err
	}
	res := Result{Clients: o.Clients}
	free, err := freeConnections(ctx, url)
	if err != nil {
		return Result{}, err
	}
	if free < o.Clients {
		if o.Transactions > 0 {
			o.Transactions = o.Transactions * o.Clients / max(free, 1)
		}
		res.Clients, res.Capped = max(free, 1), true
	}
	script := `INSERT INTO ` + Table + ` (stream_id, version, event_id, stream_type, event_type, schema_version, data, metadata)
SELECT ` + streamID + `,
 1, gen_random_uuid(), 'test', 'Happened', 1, '{"n":1}', '{"correlation_id":"c-1","actor":"test"}'
FROM generate_series(1, ` + strconv.Itoa(o.RowsPerTx) + `);
`
	dir, err := os.MkdirTemp("", "orderflow-pgbench-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, "insert.sql")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		return Result{}, err
	}
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(res.Clients), "-j", strconv.Itoa(min(res.Clients, 4))}
	if o.Transactions > 0 {
		args = append(args, "-t", strconv.Itoa(o.Transactions))
	} else {
		args = append(args, "-T", strconv.Itoa(max(int(o.Duration.Round(time.Second)/time.Second), 1)))
	}
	out, err := exec.CommandContext(ctx, bin, append(args, "-f", f, url)...).CombinedOutput() // #nosec G204 -- PostgreSQL's pgbench, found in the system's directories, on our own script
	res.Output = string(out)
	if err != nil {
		return res, fmt.Errorf("pgbench: %v\n%s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("pgbench printed no tps line:\n%s", out)
	}
	res.TPS, _ = strconv.ParseFloat(string(m[1]), 64)
	return res, nil
}

// Path finds pgbench: on PATH, or in Debian's PostgreSQL server package
// (which scripts/postgres.sh installs).
func Path() (string, error) {
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("pgbench not found: install PostgreSQL's server package (scripts/postgres.sh up does)")
}

// Exec runs sql (several statements allowed) on a connection of its own.
func Exec(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgbench setup: %w", err)
	}
	return nil
}

// freeConnections is how many more connections the server accepts, keeping
// a margin of 5 for the caller's own pools.
func freeConnections(ctx context.Context, url string) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer func() { _ = conn.Close(ctx) }()
	var free int
	err = conn.QueryRow(ctx, `SELECT current_setting('max_connections')::int
		- current_setting('superuser_reserved_connections')::int
		- (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int - 5`).Scan(&free)
	return free, err
}
