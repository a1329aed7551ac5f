package relay_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/relay"
)

// preAppend writes streams×perStream events with group commit (AppendBatch),
// so that setting up is not what the benchmark waits for.
func preAppend(b *testing.B, s *eventstore.Store, streams, perStream int) int64 {
	b.Helper()
	ctx := context.Background()
	ids := make([]eventstore.Stream, streams)
	for i := range ids {
		ids[i] = newStream()
	}
	const perTx = 100 // streams per transaction
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for v := range perStream / 10 {
		for lo := 0; lo < streams; lo += perTx {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				var reqs []eventstore.AppendRequest
				for _, st := range ids[lo:min(lo+perTx, streams)] {
					reqs = append(reqs, eventstore.AppendRequest{Stream: st, Expected: eventstore.Any(), Events: eventsN(v*10, 10)})
				}
				res, err := s.AppendBatch(ctx, reqs)
				if err == nil {
					for _, r := range res {
						if r.Err != nil {
							err = r.Err
						}
					}
				}
				if err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait() // versions of one stream go in order
	}
	head, err := s.HeadPosition(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return head
}

// BenchmarkRelayThroughput measures store → Kafka-ack throughput: each
// iteration publishes the whole pre-appended store to a new topic (the
// fresh-topic rule makes that a full republish).
//
//	go test -run '^$' -bench RelayThroughput -benchtime 2x ./streams/relay/
func BenchmarkRelayThroughput(b *testing.B) {
	e := newEnv(b, testenv.Broker(b).Addrs())
	head := preAppend(b, e.store, 500, 100)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		caught := make(chan struct{})
		var once sync.Once
		r, _ := e.newRelay(b, func(c *relay.Config) {
			c.Topic = fmt.Sprintf("bench.%d", i)
			c.OnCheckpoint = func(p int64) {
				if p >= head {
					once.Do(func() { close(caught) })
				}
			}
		})
		began := time.Now()
		stop := start(b, r)
		select {
		case <-caught:
		case <-time.After(5 * time.Minute):
			b.Fatal("relay did not catch up")
		}
		took := time.Since(began)
		stop()
		b.ReportMetric(float64(head)/took.Seconds(), "events/s")
		b.Logf("%d events published and acked in %s: %.0f events/s", head, took.Round(time.Millisecond), float64(head)/took.Seconds())
	}
}

// BenchmarkRelayCommitToAck appends one event at a time at a steady rate to
// a caught-up relay and measures, per event, the time from the append's
// return (committed) to the relay's checkpoint covering it (Kafka acked).
//
//	go test -run '^$' -bench RelayCommitToAck -benchtime 2x ./streams/relay/
func BenchmarkRelayCommitToAck(b *testing.B) {
	const (
		rate    = 500 // events/s
		samples = 3000
	)
	e := newEnv(b, testenv.Broker(b).Addrs())
	type ack struct {
		pos int64
		at  time.Time
	}
	var (
		mu   sync.Mutex
		acks []ack
		last atomic.Int64
	)
	r, _ := e.newRelay(b, func(c *relay.Config) {
		c.OnCheckpoint = func(p int64) {
			now := time.Now()
			mu.Lock()
			acks = append(acks, ack{p, now})
			mu.Unlock()
			last.Store(p)
		}
	})
	start(b, r)
	waitStatus(b, r, 10*time.Second, "leader", func(s relay.Status) bool { return s.Leader && s.KafkaUp })
	ctx := context.Background()

	for b.Loop() {
		mu.Lock()
		acks = acks[:0]
		mu.Unlock()
		type commit struct {
			pos int64
			at  time.Time
		}
		commits := make([]commit, 0, samples)
		tick := time.NewTicker(time.Second / rate)
		for i := range samples {
			<-tick.C
			st := newStream()
			res, err := e.store.Append(ctx, st, eventstore.NoStream(), eventsN(i, 1))
			if err != nil {
				b.Fatal(err)
			}
			commits = append(commits, commit{res.Position, time.Now()})
		}
		tick.Stop()
		want := commits[len(commits)-1].pos
		for deadline := time.Now().Add(30 * time.Second); last.Load() < want; {
			if time.Now().After(deadline) {
				b.Fatal("relay did not ack the last append")
			}
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		as := append([]ack(nil), acks...)
		mu.Unlock()
		h := hdrhistogram.New(1, 60_000_000, 3) // µs
		for _, c := range commits {
			i := sort.Search(len(as), func(i int) bool { return as[i].pos >= c.pos })
			// The relay can ack before Append has returned to its caller:
			// that is 0 from the caller's point of view.
			_ = h.RecordValue(max(as[i].at.Sub(c.at).Microseconds(), 1))
		}
		ms := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1000 }
		b.ReportMetric(ms(50), "p50-ms")
		b.ReportMetric(ms(95), "p95-ms")
		b.ReportMetric(ms(99), "p99-ms")
		b.Logf("commit-to-ack over %d appends at %d/s: p50 %.2fms p95 %.2fms p99 %.2fms max %.2fms",
			h.TotalCount(), rate, ms(50), ms(95), ms(99), float64(h.Max())/1000)
	}
}
