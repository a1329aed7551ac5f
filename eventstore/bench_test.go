package eventstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/benchstat"
	"github.com/orderflow/orderflow/internal/pgbench"
)

// The append benchmarks. Each reports, in the same run, the machine's bound:
// pgbench inserting the same rows into an unpartitioned table shaped like the
// events table (same indexes), one row per transaction at the same
// concurrency, and the ratio. Run them without -race, on a server that allows
// pgbench's 64 clients next to the test pools (max_connections ≥ 150; a
// smaller server gets pgbench capped, which the output says):
//
//	go test ./eventstore -run '^$' -bench Append -benchtime 20000x
//
// BenchmarkAppend is Store.Append with group commit (the default);
// BenchmarkAppendDirect is the same load with group commit disabled, one
// transaction per Append (the path before group commit), for comparison.
func BenchmarkAppend(b *testing.B) {
	benchmarkAppend(b, eventstore.GroupCommit{})
}

func BenchmarkAppendDirect(b *testing.B) {
	benchmarkAppend(b, eventstore.GroupCommit{Disabled: true})
}

func benchmarkAppend(b *testing.B, gc eventstore.GroupCommit) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			_, db := newStore(b)
			s, err := eventstore.NewWithGroupCommit(db.Command, gc)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			rec := benchstat.New()
			perWriter := max(b.N/writers, 1)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Ten events per stream, one per append, as a command
					// stream grows: stream lock, version check, insert.
					var st eventstore.Stream
					for i := range perWriter {
						exp := eventstore.Exact(int64(i % 10))
						if i%10 == 0 {
							st, exp = newStream(), eventstore.NoStream()
						}
						t0 := time.Now()
						if _, err := s.Append(ctx, st, exp, events(1)); err != nil {
							b.Error(err)
							return
						}
						rec.Since(t0)
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			rate := float64(rec.Count()) / elapsed.Seconds()
			rec.Report(b, rate, "events")
			bound, clients := pgbenchInserts(b, db.URL, writers, perWriter, 1)
			b.ReportMetric(bound, "pgbench_tx/s")
			b.ReportMetric(rate/bound, "ratio")
			st := s.Stats()
			b.Logf("append, %d writers: %s | pgbench same rows, %d clients: %.0f tx/s | ratio %.2f | %d transactions, %.1f appends each",
				writers, rec.Summary(elapsed, "events"), clients, bound, rate/bound,
				st.Batches, float64(st.Requests)/float64(max(st.Batches, 1)))
		})
	}
}

// BenchmarkAppendBatch measures AppendBatch of 100 one-event streams per
// transaction, from one goroutine, against two bounds measured in the same
// run: pgbench inserting the same 100 rows per transaction (one multi-row
// INSERT, one client) and COPY of the same rows.
func BenchmarkAppendBatch(b *testing.B) {
	s, db := newStore(b)
	ctx := context.Background()
	const perBatch = 100
	rec := benchstat.New()
	batches := max(b.N/perBatch, 1)
	b.ResetTimer()
	start := time.Now()
	for range batches {
		reqs := make([]eventstore.AppendRequest, perBatch)
		for i := range reqs {
			reqs[i] = eventstore.AppendRequest{Stream: newStream(), Expected: eventstore.NoStream(), Events: events(1)}
		}
		t0 := time.Now()
		res, err := s.AppendBatch(ctx, reqs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		rec.Since(t0)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	rate := float64(batches*perBatch) / elapsed.Seconds()
	rec.Report(b, rate, "events")
	tps, _ := pgbenchInserts(b, db.URL, 1, batches, perBatch)
	bound := tps * perBatch
	copyRate := copyInserts(b, db.URL, batches*perBatch)
	b.ReportMetric(bound, "pgbench_rows/s")
	b.ReportMetric(copyRate, "copy_rows/s")
	b.ReportMetric(rate/bound, "ratio")
	b.Logf("batches of %d: %.0f events/s, batch latency %s | pgbench %d rows/tx, 1 client: %.0f rows/s | COPY: %.0f rows/s | ratio to pgbench %.2f, to COPY %.2f",
		perBatch, rate, rec.Summary(elapsed, "batches"), perBatch, bound, copyRate, rate/bound, rate/copyRate)
}

// pgbenchInserts runs pgbench with the same rows the store appends, rowsPerTx
// per transaction (one statement), into a plain table shaped like the events
// table, and returns transactions per second and the clients it used: fewer
// than asked when the server has not the connections to spare.
func pgbenchInserts(b *testing.B, url string, clients, perClient, rowsPerTx int) (float64, int) {
	b.Helper()
	res, err := pgbench.Inserts(context.Background(), url, pgbench.Options{Clients: clients, Transactions: perClient, RowsPerTx: rowsPerTx})
	if err != nil {
		b.Fatal(err)
	}
	if res.Capped {
		b.Logf("pgbench capped at %d clients instead of %d: the server has not the connections to spare (raise max_connections, see the comment above BenchmarkAppend)", res.Clients, clients)
	}
	return res.TPS, res.Clients
}

// copyInserts copies n rows like the store's into bench_raw with COPY and
// returns rows per second: the bulk bound.
func copyInserts(b *testing.B, url string, n int) float64 {
	b.Helper()
	ctx := context.Background()
	if err := pgbench.Exec(ctx, url, pgbench.SetupSQL); err != nil {
		b.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	rows := make([][]any, n)
	for i := range rows {
		st := newStream()
		ev := events(1)[0]
		rows[i] = []any{pgtype.UUID{Bytes: st.ID, Valid: true}, int64(1), pgtype.UUID{Bytes: ev.ID, Valid: true}, st.Type, ev.Type, int32(1), string(ev.Data), `{"correlation_id":"c-1","actor":"test"}`}
	}
	cols := []string{"stream_id", "version", "event_id", "stream_type", "event_type", "schema_version", "data", "metadata"}
	start := time.Now()
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{pgbench.Table}, cols, pgx.CopyFromRows(rows)); err != nil {
		b.Fatalf("copy: %v", err)
	}
	return float64(n) / time.Since(start).Seconds()
}
