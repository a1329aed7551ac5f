package eventstore_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/benchstat"
)

// BenchmarkAppendKeyed is BenchmarkAppend's load with a request key on
// every append (a fresh key each, as commands with Idempotency-Key send):
// the key's lock, probe and row ride the same group-commit transaction.
// Compare it with BenchmarkAppend in the same run:
//
//	go test ./eventstore -run '^$' -bench 'Append$|AppendKeyed' -benchtime 20000x
func BenchmarkAppendKeyed(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, db := newStore(b)
			ctx := context.Background()
			rec := benchstat.New()
			perWriter := max(b.N/writers, 1)
			fp := []byte("0123456789abcdef0123456789abcdef") // a SHA-256's length
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var st eventstore.Stream
					for i := range perWriter {
						exp := eventstore.Exact(int64(i % 10))
						if i%10 == 0 {
							st, exp = newStream(), eventstore.NoStream()
						}
						key := eventstore.RequestKey{Scope: "/bench/" + strconv.Itoa(w), Key: strconv.Itoa(i), Fingerprint: fp}
						t0 := time.Now()
						if _, err := s.AppendKeyed(ctx, key, st, exp, events(1)); err != nil {
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
			b.Logf("keyed append, %d writers: %s | pgbench same rows, %d clients: %.0f tx/s | ratio %.2f | %d transactions, %.1f appends each",
				writers, rec.Summary(elapsed, "events"), clients, bound, rate/bound,
				st.Batches, float64(st.Requests)/float64(max(st.Batches, 1)))
		})
	}
}
