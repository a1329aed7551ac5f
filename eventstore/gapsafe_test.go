package eventstore_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
)

// TestReadAllIsGapSafe is the brief's adversarial test: concurrent writers
// that sleep inside their transactions, multi-stream transactions, aborts,
// bursts of concurrent Appends that group commit coalesces into shared
// transactions, and a long-running transaction, while readers tail ReadAll. Every committed
// event must be read exactly once by every reader, never an aborted one, and
// each stream's versions must arrive consecutive and in order.
//
// It fails against a plain bigserial read (drop the events_append_lock
// trigger to see it): a transaction that drew a lower position but commits
// later is skipped by a reader that already moved past it.
func TestReadAllIsGapSafe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db := newStore(t)

	const (
		writers  = 16
		readers  = 3
		duration = 4 * time.Second
	)
	streams := make([]eventstore.Stream, 24)
	for i := range streams {
		streams[i] = newStream()
	}

	var (
		mu        sync.Mutex
		committed = map[ulid.ULID]bool{}
		aborted   = map[ulid.ULID]bool{}
	)
	record := func(into map[ulid.ULID]bool, evs ...[]eventstore.EventData) {
		mu.Lock()
		defer mu.Unlock()
		for _, es := range evs {
			for _, e := range es {
				into[e.ID] = true
			}
		}
	}
	jitter := func() { time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) }

	// A long-running transaction holding an xid for most of the test: a
	// reader based on snapshot xmin would stall behind it; this one must not.
	longTx, err := db.Owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := longTx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}

	writeCtx, stopWriting := context.WithTimeout(ctx, duration)
	defer stopWriting()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for writeCtx.Err() == nil {
				st := streams[rand.IntN(len(streams))]
				evs := events(1 + rand.IntN(3))
				switch mode := (w + rand.IntN(5)) % 5; mode {
				case 0: // plain append
					if _, err := s.Append(ctx, st, eventstore.Any(), evs); err != nil {
						t.Error(err)
						return
					}
					record(committed, evs)
				case 1, 2: // sleeps inside the transaction; mode 2 aborts
					err := pgx.BeginFunc(ctx, db.Command, func(tx pgx.Tx) error {
						jitter()
						if _, err := s.AppendTx(ctx, tx, st, eventstore.Any(), evs); err != nil {
							return err
						}
						jitter()
						if mode == 2 {
							return errAbort
						}
						return nil
					})
					switch {
					case mode == 2 && errors.Is(err, errAbort):
						record(aborted, evs)
					case err != nil:
						t.Error(err)
						return
					default:
						record(committed, evs)
					}
				case 3: // several streams in one transaction
					other := streams[rand.IntN(len(streams))]
					more := events(1 + rand.IntN(2))
					res, err := s.AppendBatch(ctx, []eventstore.AppendRequest{
						{Stream: st, Events: evs}, {Stream: other, Events: more},
					})
					if err != nil {
						t.Error(err)
						return
					}
					for i, r := range res {
						if r.Err != nil {
							t.Errorf("batch request %d: %v", i, r.Err)
						}
					}
					record(committed, evs, more)
				case 4: // a burst of concurrent Appends, coalesced by group commit
					var bwg sync.WaitGroup
					for range 2 + rand.IntN(7) {
						bwg.Add(1)
						go func() {
							defer bwg.Done()
							evs := events(1 + rand.IntN(3))
							if _, err := s.Append(ctx, streams[rand.IntN(len(streams))], eventstore.Any(), evs); err != nil {
								t.Error(err)
								return
							}
							record(committed, evs)
						}()
					}
					bwg.Wait()
				}
			}
		}()
	}

	type seen struct {
		ids       []ulid.ULID
		positions []int64
		versions  map[ulid.ULID][]int64
	}
	results := make([]seen, readers)
	writersDone := make(chan struct{})
	var rwg sync.WaitGroup
	for r := range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			res := seen{versions: map[ulid.ULID][]int64{}}
			var after int64
			finishing := false
			for {
				select {
				case <-writersDone:
					finishing = true
				default:
				}
				batch, err := s.ReadAll(ctx, after, 1+rand.IntN(64))
				if err != nil {
					t.Error(err)
					return
				}
				for _, e := range batch {
					res.ids = append(res.ids, e.ID)
					res.positions = append(res.positions, e.Position)
					res.versions[e.StreamID] = append(res.versions[e.StreamID], e.Version)
					after = e.Position
				}
				if len(batch) == 0 && finishing {
					break
				}
			}
			results[r] = res
		}()
	}

	wg.Wait()
	if err := longTx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	close(writersDone)
	rwg.Wait()
	if t.Failed() {
		return
	}

	if len(committed) < 500 || len(aborted) == 0 {
		t.Fatalf("too little contention to prove anything: %d committed, %d aborted", len(committed), len(aborted))
	}
	if st := s.Stats(); st.Requests < 2*st.Batches {
		t.Fatalf("Appends were hardly coalesced (%+v): group commit was not exercised", st)
	}
	for r, res := range results {
		counts := map[ulid.ULID]int{}
		for i, id := range res.ids {
			counts[id]++
			if aborted[id] {
				t.Fatalf("reader %d read aborted event %s", r, id)
			}
			if i > 0 && res.positions[i] <= res.positions[i-1] {
				t.Fatalf("reader %d: position %d after %d", r, res.positions[i], res.positions[i-1])
			}
		}
		for id := range committed {
			if counts[id] != 1 {
				t.Fatalf("reader %d read committed event %s %d times", r, id, counts[id])
			}
		}
		if len(counts) != len(committed) {
			t.Fatalf("reader %d read %d events, %d committed", r, len(counts), len(committed))
		}
		for sid, vs := range res.versions {
			for i, v := range vs {
				if v != int64(i+1) {
					t.Fatalf("reader %d, stream %s: version %d at index %d", r, sid, v, i)
				}
			}
		}
	}
	st := s.Stats()
	t.Logf("%d events committed, %d aborted, read exactly once by %d readers; Append: %d requests in %d transactions",
		len(committed), len(aborted), readers, st.Requests, st.Batches)
}

var errAbort = errors.New("deliberate abort")
