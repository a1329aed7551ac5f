package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/testenv"
)

func newStore(t testing.TB) (*eventstore.Store, *pgtest.DB) {
	t.Helper()
	e := testenv.New(t)
	return e.Store, e.DB
}

func newStream() eventstore.Stream { return eventstore.Stream{ID: ulid.Make(), Type: "test"} }

func events(n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = eventstore.EventData{
			ID: ulid.Make(), Type: "Happened", SchemaVersion: 1,
			Data:     json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
			Metadata: eventstore.Metadata{CorrelationID: "c-1", Actor: "test"},
		}
	}
	return out
}

func TestExpectedVersionModes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)

	tests := []struct {
		name     string
		prior    int // events already in the stream
		expected eventstore.ExpectedVersion
		wantErr  bool
	}{
		{"any appends to a new stream", 0, eventstore.Any(), false},
		{"any appends to an existing stream", 2, eventstore.Any(), false},
		{"no-stream appends to a new stream", 0, eventstore.NoStream(), false},
		{"no-stream refuses an existing stream", 1, eventstore.NoStream(), true},
		{"exact appends at the current version", 3, eventstore.Exact(3), false},
		{"exact refuses a stale version", 3, eventstore.Exact(2), true},
		{"exact refuses a version ahead", 3, eventstore.Exact(4), true},
		{"exact refuses a stream that does not exist", 0, eventstore.Exact(1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStream()
			if tt.prior > 0 {
				if _, err := s.Append(ctx, st, eventstore.Any(), events(tt.prior)); err != nil {
					t.Fatal(err)
				}
			}
			res, err := s.Append(ctx, st, tt.expected, events(2))
			if tt.wantErr {
				var wev *eventstore.WrongExpectedVersionError
				if !errors.Is(err, eventstore.ErrWrongExpectedVersion) || !errors.As(err, &wev) {
					t.Fatalf("want wrong expected version, got %v", err)
				}
				if wev.Actual != int64(tt.prior) {
					t.Fatalf("actual version = %d, want %d", wev.Actual, tt.prior)
				}
				if v, _ := s.StreamVersion(ctx, st); v != int64(tt.prior) {
					t.Fatalf("a refused append wrote: version %d", v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.FromVersion != int64(tt.prior+1) || res.ToVersion != int64(tt.prior+2) || res.Position < 1 {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

func TestRetriedAppendStoresNothingTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	st := newStream()
	evs := events(3)

	first, err := s.Append(ctx, st, eventstore.NoStream(), evs)
	if err != nil {
		t.Fatal(err)
	}
	// The retry carries a stale expectation (the stream now exists): it
	// must still be recognised as the same append.
	again, err := s.Append(ctx, st, eventstore.NoStream(), evs)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !again.Replayed || again.FromVersion != first.FromVersion || again.ToVersion != first.ToVersion || again.Position != first.Position {
		t.Fatalf("retry result %+v, first %+v", again, first)
	}
	if v, _ := s.StreamVersion(ctx, st); v != 3 {
		t.Fatalf("version after retry = %d, want 3", v)
	}

	t.Run("a partial overlap is not a retry", func(t *testing.T) {
		mixed := append([]eventstore.EventData{evs[2]}, events(1)...)
		if _, err := s.Append(ctx, st, eventstore.Any(), mixed); !errors.Is(err, eventstore.ErrEventIDConflict) {
			t.Fatalf("want ErrEventIDConflict, got %v", err)
		}
	})
	t.Run("the same ids in another order are not a retry", func(t *testing.T) {
		swapped := []eventstore.EventData{evs[1], evs[0], evs[2]}
		if _, err := s.Append(ctx, st, eventstore.Any(), swapped); !errors.Is(err, eventstore.ErrEventIDConflict) {
			t.Fatalf("want ErrEventIDConflict, got %v", err)
		}
	})
}

func TestStreamTypeIsFixedAtCreation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	st := newStream()
	if _, err := s.Append(ctx, st, eventstore.Any(), events(1)); err != nil {
		t.Fatal(err)
	}
	st.Type = "other"
	if _, err := s.Append(ctx, st, eventstore.Any(), events(1)); !errors.Is(err, eventstore.ErrStreamTypeMismatch) {
		t.Fatalf("want ErrStreamTypeMismatch, got %v", err)
	}
}

// 64 goroutines race exact-version appends on one stream: every version has
// exactly one winner and the stream ends consecutive.
func TestExactVersionRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	st := newStream()
	const workers, perWorker = 64, 10

	var (
		mu      sync.Mutex
		winners = map[int64]int{}
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for won := 0; won < perWorker; {
				v, err := s.StreamVersion(ctx, st)
				if err != nil {
					t.Error(err)
					return
				}
				exp := eventstore.Exact(v)
				if v == 0 {
					exp = eventstore.NoStream()
				}
				res, err := s.Append(ctx, st, exp, events(1))
				if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
					continue
				}
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				mu.Lock()
				winners[res.ToVersion]++
				mu.Unlock()
				won++
			}
		}()
	}
	wg.Wait()

	evs, err := s.ReadStream(ctx, st, 1, workers*perWorker+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != workers*perWorker {
		t.Fatalf("stream has %d events, want %d", len(evs), workers*perWorker)
	}
	for i, e := range evs {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
		if winners[e.Version] != 1 {
			t.Fatalf("version %d had %d winners", e.Version, winners[e.Version])
		}
		if i > 0 && e.Position <= evs[i-1].Position {
			t.Fatalf("positions not ascending at version %d", e.Version)
		}
	}
}

func TestStreamsInDifferentMonthlyPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db := newStore(t)
	past := time.Date(2024, 2, 10, 12, 0, 0, 0, time.UTC)
	// Months this far back are the owner's to create (serving roles keep
	// months near now only).
	if _, err := eventstore.New(db.Owner).CreatePartitions(ctx, past, past.AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	streams := []eventstore.Stream{
		{ID: ulid.MustNew(ulid.Timestamp(past), ulid.DefaultEntropy()), Type: "test"},
		{ID: ulid.MustNew(ulid.Timestamp(past.AddDate(0, 1, 0)), ulid.DefaultEntropy()), Type: "test"},
		newStream(),
	}
	var last int64
	for _, st := range streams {
		res, err := s.Append(ctx, st, eventstore.NoStream(), events(2))
		if err != nil {
			t.Fatal(err)
		}
		if res.Position <= last {
			t.Fatalf("position %d after %d: positions must grow across partitions", res.Position, last)
		}
		last = res.Position
		got, err := s.ReadStream(ctx, st, 1, 10)
		if err != nil || len(got) != 2 || got[0].StreamID != st.ID {
			t.Fatalf("read back %s: %v %v", st.ID, len(got), err)
		}
	}
	all, err := s.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 {
		t.Fatalf("ReadAll across partitions returned %d events, want 6", len(all))
	}
	parts, err := s.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range parts {
		names[p.Name] = true
	}
	for _, want := range []string{"events_y2024m02", "events_y2024m03", "events_y" + time.Now().UTC().Format("2006m01")} {
		if !names[want] {
			t.Errorf("partition %s missing; have %v", want, names)
		}
	}

	t.Run("a month without a partition is refused clearly", func(t *testing.T) {
		old := eventstore.Stream{ID: ulid.MustNew(ulid.Timestamp(time.Date(2019, 5, 1, 0, 0, 0, 0, time.UTC)), ulid.DefaultEntropy()), Type: "test"}
		if _, err := s.Append(ctx, old, eventstore.Any(), events(1)); !errors.Is(err, eventstore.ErrNoPartition) {
			t.Fatalf("want ErrNoPartition, got %v", err)
		}
	})

	t.Run("detached months leave every read", func(t *testing.T) {
		done, err := s.DetachPartitionsBefore(ctx, past.AddDate(0, 1, 0), time.Now())
		if err == nil {
			t.Fatalf("the application role detached %v; only the owner may", done)
		}
	})
}

func TestPartitionsAheadExist(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	parts, err := s.Partitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, p := range parts {
		have[p.Name] = true
	}
	now := time.Now().UTC()
	for i := 0; i <= eventstore.PartitionsAhead; i++ {
		m := time.Date(now.Year(), now.Month()+time.Month(i), 1, 0, 0, 0, 0, time.UTC)
		if name := "events_y" + m.Format("2006m01"); !have[name] {
			t.Errorf("partition %s is missing", name)
		}
	}
}

func TestEventsAreAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db := newStore(t)
	if _, err := s.Append(ctx, newStream(), eventstore.Any(), events(2)); err != nil {
		t.Fatal(err)
	}
	statements := []string{
		`UPDATE events SET data = '{}'`,
		`DELETE FROM events`,
		`TRUNCATE events`,
		`UPDATE events_y` + time.Now().UTC().Format("2006m01") + ` SET data = '{}'`,
		`DELETE FROM events_y` + time.Now().UTC().Format("2006m01"),
		`TRUNCATE events_y` + time.Now().UTC().Format("2006m01"),
	}
	for _, stmt := range statements {
		for _, who := range []struct {
			name string
			exec func(string) error
		}{
			{"command role", func(q string) error { _, err := db.Command.Exec(ctx, q); return err }},
			{"relay role", func(q string) error { _, err := db.Relay.Exec(ctx, q); return err }},
			{"projector role", func(q string) error { _, err := db.Projector.Exec(ctx, q); return err }},
			{"query role", func(q string) error { _, err := db.Query.Exec(ctx, q); return err }},
			{"schema owner (superuser)", func(q string) error { _, err := db.Owner.Exec(ctx, q); return err }},
		} {
			if err := who.exec(stmt); err == nil {
				t.Errorf("%s: %q succeeded", who.name, stmt)
			}
		}
	}
	var n int
	if err := db.Owner.QueryRow(ctx, `SELECT count(*) FROM events WHERE data <> '{}'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("events changed: %d rows intact, %v", n, err)
	}
}

func TestAppendBatchIsolatesFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	a, b := newStream(), newStream()
	if _, err := s.Append(ctx, b, eventstore.Any(), events(1)); err != nil {
		t.Fatal(err)
	}
	res, err := s.AppendBatch(ctx, []eventstore.AppendRequest{
		{Stream: a, Expected: eventstore.NoStream(), Events: events(2)},
		{Stream: b, Expected: eventstore.NoStream(), Events: events(1)}, // stale
		{Stream: b, Expected: eventstore.Exact(1), Events: events(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[0].ToVersion != 2 {
		t.Errorf("first request: %+v", res[0])
	}
	if !errors.Is(res[1].Err, eventstore.ErrWrongExpectedVersion) {
		t.Errorf("second request: want wrong version, got %v", res[1].Err)
	}
	if res[2].Err != nil || res[2].ToVersion != 2 {
		t.Errorf("third request: %+v", res[2])
	}
}
