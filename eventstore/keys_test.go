package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/pgtest"
)

// globalLockKey is events_append_lock's advisory lock (migration 00001).
const globalLockKey = 7207745461657985024

func testKey(key, fp string) RequestKey {
	return RequestKey{Scope: "client-1", Key: key, Fingerprint: []byte(fp)}
}

// counts is what keyed appends write: events and keys.
type counts struct{ Events, Keys int }

func countRows(t *testing.T, db *pgtest.DB) counts {
	t.Helper()
	var c counts
	err := db.Owner.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM append_keys)`).Scan(&c.Events, &c.Keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type keyedOutcome struct {
	res KeyedResult
	err error
}

// enqueueKeyed starts a keyed append and returns once the committer has
// accepted it, so that the next one queues after it.
func enqueueKeyed(t *testing.T, s *Store, key RequestKey, st Stream, exp ExpectedVersion, evs []EventData) <-chan keyedOutcome {
	t.Helper()
	out := make(chan keyedOutcome, 1)
	before := s.gc.accepted.Load()
	go func() {
		res, err := s.AppendKeyed(context.Background(), key, st, exp, evs)
		out <- keyedOutcome{res, err}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for s.gc.accepted.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("request never queued")
		}
		time.Sleep(time.Millisecond)
	}
	return out
}

func TestAKeyAppendsOnce(t *testing.T) {
	t.Parallel()
	s, db := newInternalStore(t)
	ctx := context.Background()
	st := Stream{ID: ulid.Make(), Type: "test"}
	first, err := s.AppendKeyed(ctx, testKey("k1", "request A"), st, NoStream(), oneEvent())
	if err != nil || first.Replayed || first.StreamID != st.ID || first.ToVersion != 1 {
		t.Fatalf("first append: %+v %v", first, err)
	}
	before := countRows(t, db)

	t.Run("the same key and fingerprint with new event ids replays the first result", func(t *testing.T) {
		again, err := s.AppendKeyed(ctx, testKey("k1", "request A"), st, Exact(1), oneEvent())
		want := KeyedResult{AppendResult: AppendResult{FromVersion: 1, ToVersion: 1, Position: first.Position, Replayed: true}, StreamID: st.ID}
		if err != nil || again != want {
			t.Fatalf("replay: %+v %v, want %+v", again, err, want)
		}
		if got := countRows(t, db); got != before {
			t.Fatalf("rows %+v → %+v", before, got)
		}
	})
	t.Run("the same key with another fingerprint is refused and appends nothing", func(t *testing.T) {
		if _, err := s.AppendKeyed(ctx, testKey("k1", "request B"), st, Any(), oneEvent()); !errors.Is(err, ErrKeyReused) {
			t.Fatalf("want ErrKeyReused, got %v", err)
		}
		if got := countRows(t, db); got != before {
			t.Fatalf("rows %+v → %+v", before, got)
		}
	})
	t.Run("a retry that names a new stream gets the first stream back", func(t *testing.T) {
		other := Stream{ID: ulid.Make(), Type: "test"}
		again, err := s.AppendKeyed(ctx, testKey("k1", "request A"), other, NoStream(), oneEvent())
		if err != nil || !again.Replayed || again.StreamID != st.ID {
			t.Fatalf("replay onto a new stream: %+v %v", again, err)
		}
		if v, _ := s.StreamVersion(ctx, other); v != 0 {
			t.Fatalf("the new stream got version %d", v)
		}
	})
	t.Run("the key in another scope is another key", func(t *testing.T) {
		k := testKey("k1", "request B")
		k.Scope = "client-2"
		res, err := s.AppendKeyed(ctx, k, st, Exact(1), oneEvent())
		if err != nil || res.Replayed || res.ToVersion != 2 {
			t.Fatalf("other scope: %+v %v", res, err)
		}
	})
	t.Run("LookupKey reads what the first append answered", func(t *testing.T) {
		res, found, err := s.LookupKey(ctx, testKey("k1", "request A"))
		if err != nil || !found || !res.Replayed || res.Position != first.Position || res.StreamID != st.ID {
			t.Fatalf("lookup: %+v %v %v", res, found, err)
		}
		if _, found, err := s.LookupKey(ctx, testKey("k1", "request B")); !found || !errors.Is(err, ErrKeyReused) {
			t.Fatalf("lookup with another fingerprint: %v %v", found, err)
		}
		if _, found, err := s.LookupKey(ctx, testKey("never", "x")); found || err != nil {
			t.Fatalf("lookup of an unused key: %v %v", found, err)
		}
	})
}

func TestAFailedKeyedAppendStoresNoKey(t *testing.T) {
	t.Parallel()
	s, db := newInternalStore(t)
	ctx := context.Background()
	st := Stream{ID: ulid.Make(), Type: "test"}
	if _, err := s.Append(ctx, st, NoStream(), oneEvent()); err != nil {
		t.Fatal(err)
	}
	before := countRows(t, db)
	var wrong *WrongExpectedVersionError
	if _, err := s.AppendKeyed(ctx, testKey("k", "r"), st, Exact(5), oneEvent()); !errors.As(err, &wrong) || wrong.Actual != 1 {
		t.Fatalf("want a wrong version at 1, got %v", err)
	}
	if got := countRows(t, db); got != before {
		t.Fatalf("rows %+v → %+v", before, got)
	}
	res, err := s.AppendKeyed(ctx, testKey("k", "r"), st, Exact(1), oneEvent())
	if err != nil || res.Replayed || res.ToVersion != 2 {
		t.Fatalf("the decision again on fresh state: %+v %v", res, err)
	}
}

func TestBadKeysAreRefusedBeforeAnythingIsWritten(t *testing.T) {
	t.Parallel()
	s, db := newInternalStore(t)
	before := countRows(t, db)
	for name, k := range map[string]RequestKey{
		"an empty key":          {Key: ""},
		"a key over 255 bytes":  {Key: strings.Repeat("k", MaxKeyLen+1)},
		"a scope over 255":      {Scope: strings.Repeat("s", MaxKeyLen+1), Key: "k"},
		"a NUL in the key":      {Key: "a\x00b"},
		"invalid UTF-8":         {Key: "\xff"},
		"a fingerprint over 64": {Key: "k", Fingerprint: make([]byte, MaxFingerprintLen+1)},
	} {
		if _, err := s.AppendKeyed(context.Background(), k, Stream{ID: ulid.Make(), Type: "test"}, Any(), oneEvent()); err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
	if got := countRows(t, db); got != before {
		t.Fatalf("rows %+v → %+v", before, got)
	}
}

// Many goroutines send the same keyed request at once, through two stores
// on one database (two processes' committers: concurrent batches as well
// as requests sharing a batch), each with event ids of its own and no
// version expectation, so that only the key can keep them from all
// appending. Exactly one appends; every other gets its result.
func TestManyGoroutinesRacingWithOneKeyAppendOnce(t *testing.T) {
	t.Parallel()
	s1, db := newInternalStore(t)
	s2 := New(db.Command)
	st := Stream{ID: ulid.Make(), Type: "test"}
	const racers = 48
	results := make([]keyedOutcome, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := s1
			if i%2 == 1 {
				s = s2
			}
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := s.AppendKeyed(ctx, testKey("once", "the request"), st, Any(), oneEvent())
			results[i] = keyedOutcome{res, err}
		}()
	}
	close(start)
	wg.Wait()
	fresh := 0
	for i, o := range results {
		if o.err != nil {
			t.Fatalf("racer %d: %v", i, o.err)
		}
		if !o.res.Replayed {
			fresh++
		}
		if o.res.ToVersion != 1 || o.res.Position != results[0].res.Position || o.res.StreamID != st.ID {
			t.Fatalf("racer %d answered %+v, racer 0 %+v", i, o.res, results[0].res)
		}
	}
	if fresh != 1 {
		t.Fatalf("%d racers appended, want 1", fresh)
	}
	if got := countRows(t, db); got != (counts{Events: 1, Keys: 1}) {
		t.Fatalf("rows %+v, want one event and one key", got)
	}
}

// Requests sharing a key inside one batch: the first appends, a second with
// the same fingerprint replays it (with its position, known only after the
// insert), one with another fingerprint is refused, and a request repeating
// event ids (a second round of the same transaction) sees the key too.
func TestOneKeyTwiceInOneBatch(t *testing.T) {
	t.Parallel()
	s, db := newInternalStore(t)
	blocker := Stream{ID: ulid.Make(), Type: "test"}
	enqueue, release := queueBehindLock(t, s, db, blocker)
	held := enqueue(blocker, Any(), oneEvent())
	inFlight(t, s, 1)

	st := Stream{ID: ulid.Make(), Type: "test"}
	evs := oneEvent()
	a := enqueueKeyed(t, s, testKey("k", "A"), st, NoStream(), evs)
	b := enqueueKeyed(t, s, testKey("k", "A"), st, NoStream(), oneEvent())
	c := enqueueKeyed(t, s, testKey("k", "B"), st, Any(), oneEvent())
	other := enqueueKeyed(t, s, testKey("other", "A"), st, Exact(1), oneEvent())
	d := enqueueKeyed(t, s, testKey("k", "A"), st, NoStream(), evs) // repeats a's event id: next round
	release()
	if o := <-held; o.err != nil {
		t.Fatal(o.err)
	}
	oa, ob, oc, oo, od := <-a, <-b, <-c, <-other, <-d
	if oa.err != nil || oa.res.Replayed || oa.res.ToVersion != 1 || oa.res.Position == 0 {
		t.Fatalf("first: %+v %v", oa.res, oa.err)
	}
	for name, o := range map[string]keyedOutcome{"same batch": ob, "next round": od} {
		if o.err != nil || !o.res.Replayed || o.res.AppendResult != (AppendResult{1, 1, oa.res.Position, true}) || o.res.StreamID != st.ID {
			t.Errorf("%s replay: %+v %v (first %+v)", name, o.res, o.err, oa.res)
		}
	}
	if !errors.Is(oc.err, ErrKeyReused) {
		t.Errorf("another fingerprint: want ErrKeyReused, got %v", oc.err)
	}
	if oo.err != nil || oo.res.ToVersion != 2 {
		t.Errorf("another key on the stream: %+v %v", oo.res, oo.err)
	}
	if got := countRows(t, db); got != (counts{Events: 3, Keys: 2}) {
		t.Fatalf("rows %+v, want the blocker's event, two appended and their two keys", got)
	}
	if st := s.Stats(); st.Batches != 2 {
		t.Fatalf("want the blocker's batch and one more, got %+v", st)
	}
}

// A keyed request refused by the database (its data holds \u0000) fails
// alone; the keyed requests it shared a batch with store their keys once.
func TestAKeyedBatchRefusedByTheDatabaseIsRunRequestByRequest(t *testing.T) {
	t.Parallel()
	s, db := newInternalStore(t)
	blocker := Stream{ID: ulid.Make(), Type: "test"}
	enqueue, release := queueBehindLock(t, s, db, blocker)
	held := enqueue(blocker, Any(), oneEvent())
	inFlight(t, s, 1)
	good := enqueueKeyed(t, s, testKey("good", "g"), Stream{ID: ulid.Make(), Type: "test"}, NoStream(), oneEvent())
	bad := enqueueKeyed(t, s, testKey("bad", "b"), Stream{ID: ulid.Make(), Type: "test"}, NoStream(),
		[]EventData{{ID: ulid.Make(), Type: "Happened", Data: json.RawMessage(`{"s":"\u0000"}`)}})
	release()
	if o := <-held; o.err != nil {
		t.Fatal(o.err)
	}
	if o := <-good; o.err != nil || o.res.Replayed {
		t.Fatalf("good: %+v %v", o.res, o.err)
	}
	if o := <-bad; o.err == nil {
		t.Fatal("the \\u0000 request succeeded")
	}
	if got := countRows(t, db); got != (counts{Events: 2, Keys: 1}) {
		t.Fatalf("rows %+v, want the blocker's and good's events and good's key", got)
	}
	if _, found, _ := s.LookupKey(context.Background(), testKey("bad", "b")); found {
		t.Fatal("the refused request stored its key")
	}
}

// heldGlobalLock takes the global append lock in a transaction of the
// test's, so that appends stop right before their INSERT: after their
// stream and key locks. release ends it.
func heldGlobalLock(t *testing.T, db *pgtest.DB) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(globalLockKey)); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := tx.Rollback(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// waitingWithKeyLock waits for a backend of this test's database that holds
// a key lock (advisory, two-int4 space) and waits for the global lock, and
// returns its pid. (Advisory locks are per database; pg_locks shows the
// whole cluster's.)
func waitingWithKeyLock(t *testing.T, db *pgtest.DB) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pid int
		err := db.Owner.QueryRow(context.Background(), `
			SELECT w.pid FROM pg_locks w
			 WHERE w.locktype = 'advisory' AND NOT w.granted AND w.objsubid = 1
			   AND w.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			   AND EXISTS (SELECT FROM pg_locks k WHERE k.pid = w.pid AND k.locktype = 'advisory'
			                  AND k.objsubid = 2 AND k.granted)
			 LIMIT 1`).Scan(&pid)
		if err == nil {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no append waits for the global lock holding a key lock: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The backend of a keyed append dies between taking its key and appending
// (terminated while it waits for the global lock): neither the key nor any
// event is stored, the key's lock went with the backend, and the retry
// appends, once. Alone (events_append_keyed) and in a batch of two
// (events_append_batch).
func TestABackendDyingBetweenKeyAndAppendLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d keyed requests", n), func(t *testing.T) {
			s, db := newInternalStore(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
			defer cancel()
			release := heldGlobalLock(t, db)
			var reqs []AppendRequest
			for i := range n {
				key := testKey(fmt.Sprint("crash-", i), "the request")
				reqs = append(reqs, AppendRequest{Stream: Stream{ID: ulid.Make(), Type: "test"}, Expected: NoStream(), Events: oneEvent(), Key: &key})
			}
			// AppendBatch runs in this goroutine's call, without group
			// commit's retry of a failed statement, as a crashing process
			// would.
			done := make(chan error, 1)
			go func() {
				_, err := s.AppendBatch(ctx, reqs)
				done <- err
			}()
			pid := waitingWithKeyLock(t, db)
			if _, err := db.Owner.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err == nil {
				t.Fatal("the append survived its backend")
			}
			release()
			if got := countRows(t, db); got != (counts{}) {
				t.Fatalf("rows %+v after the crash, want none", got)
			}
			for _, r := range reqs {
				res, err := s.AppendKeyed(ctx, *r.Key, r.Stream, NoStream(), oneEvent())
				if err != nil || res.Replayed || res.ToVersion != 1 {
					t.Fatalf("retry after the crash: %+v %v", res, err)
				}
				again, err := s.AppendKeyed(ctx, *r.Key, r.Stream, NoStream(), oneEvent())
				if err != nil || !again.Replayed || again.Position != res.Position {
					t.Fatalf("second retry: %+v %v", again, err)
				}
			}
			if got := countRows(t, db); got != (counts{Events: n, Keys: n}) {
				t.Fatalf("rows %+v, want %d events and their keys", got, n)
			}
		})
	}
}

// holdStreamLock takes stream's lock in a transaction of the test's, so
// that a batch holding the stream stops at its first step.
func holdStreamLock(t *testing.T, db *pgtest.DB, stream Stream) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))`, uuidOf(stream.ID)); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := tx.Rollback(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// A caller that gives up while its keyed append is in flight does not know
// whether it happened; it did (the batch carries on without it), and the
// retry with the same key gets its result without appending again.
func TestAKeyedAppendWhoseCallerGaveUpIsReplayed(t *testing.T) {
	t.Parallel()
	s, db := newInternalStore(t)
	x, y := Stream{ID: ulid.Make(), Type: "test"}, Stream{ID: ulid.Make(), Type: "test"}
	releaseY := holdStreamLock(t, db, y)
	enqueue, releaseX := queueBehindLock(t, s, db, x)
	first := enqueue(x, Any(), oneEvent()) // batch 1, held by x's lock
	inFlight(t, s, 1)

	st := Stream{ID: ulid.Make(), Type: "test"}
	key := testKey("impatient", "the request")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gaveUp := make(chan error, 1)
	before := s.gc.accepted.Load()
	go func() {
		_, err := s.AppendKeyed(ctx, key, st, NoStream(), oneEvent())
		gaveUp <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); s.gc.accepted.Load() == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the keyed append never queued")
		}
	}
	second := enqueue(y, Any(), oneEvent()) // batch 2 with the keyed append, held by y's lock
	releaseX()
	if o := <-first; o.err != nil {
		t.Fatal(o.err)
	}
	inFlight(t, s, 2)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	releaseY()
	if o := <-second; o.err != nil {
		t.Fatal(o.err)
	}
	guard, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	res, err := s.AppendKeyed(guard, key, st, NoStream(), oneEvent())
	if err != nil || !res.Replayed || res.ToVersion != 1 {
		t.Fatalf("retry: %+v %v, want the replay of version 1", res, err)
	}
	if got := countRows(t, db); got != (counts{Events: 3, Keys: 1}) {
		t.Fatalf("rows %+v, want x's, y's and the keyed event, and one key", got)
	}
}

func TestExpiredKeysNoLongerDedupe(t *testing.T) {
	t.Parallel()
	s, db := newInternalStore(t)
	ctx := context.Background()
	st := Stream{ID: ulid.Make(), Type: "test"}
	for i := range 3 {
		if _, err := s.AppendKeyed(ctx, testKey(fmt.Sprint("k", i), "r"), st, Any(), oneEvent()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Owner.Exec(ctx, `UPDATE append_keys SET created_at = now() - interval '3 days' WHERE key <> 'k2'`); err != nil {
		t.Fatal(err)
	}
	n, err := s.ExpireKeys(ctx, time.Now().Add(-48*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("expired %d (%v), want 2", n, err)
	}
	if res, err := s.AppendKeyed(ctx, testKey("k0", "r"), st, Any(), oneEvent()); err != nil || res.Replayed {
		t.Fatalf("an expired key: %+v %v, want a new append", res, err)
	}
	if res, err := s.AppendKeyed(ctx, testKey("k2", "r"), st, Any(), oneEvent()); err != nil || !res.Replayed {
		t.Fatalf("a kept key: %+v %v, want a replay", res, err)
	}
}
