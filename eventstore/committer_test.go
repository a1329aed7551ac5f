package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/pgtest"
)

// These tests see the committer's queue, to build a batch whose content and
// order are known: a first Append is held inside its transaction by a stream
// lock the test owns, the next requests queue behind it in a chosen order,
// and releasing the lock lets them go as one batch.

func newInternalStore(t *testing.T) (*Store, *pgtest.DB) {
	t.Helper()
	db := pgtest.New(t)
	s := New(db.Command)
	now := time.Now()
	if err := s.EnsureAhead(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	return s, db
}

func oneEvent() []EventData {
	return []EventData{{ID: ulid.Make(), Type: "Happened", Data: json.RawMessage(`{}`)}}
}

type outcome struct {
	res AppendResult
	err error
}

// queueBehindLock holds stream's lock in a transaction of its own, starts an
// Append to stream (which the worker then runs and which waits on the lock),
// and returns once that Append is in flight, with a function that queues
// further Appends in order and one that releases the lock.
func queueBehindLock(t *testing.T, s *Store, db *pgtest.DB, stream Stream) (enqueue func(Stream, ExpectedVersion, []EventData) <-chan outcome, release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))`, uuidOf(stream.ID)); err != nil {
		t.Fatal(err)
	}
	enqueue = func(st Stream, exp ExpectedVersion, evs []EventData) <-chan outcome {
		out := make(chan outcome, 1)
		before := s.gc.accepted.Load()
		go func() {
			res, err := s.Append(ctx, st, exp, evs)
			out <- outcome{res, err}
		}()
		// Wait until it is queued (or taken), so the next one queues after it.
		deadline := time.Now().Add(time.Minute)
		for s.gc.accepted.Load() == before {
			if time.Now().After(deadline) {
				t.Fatal("request never queued")
			}
			time.Sleep(time.Millisecond)
		}
		return out
	}
	return enqueue, func() {
		if err := tx.Rollback(ctx); err != nil {
			t.Error(err)
		}
	}
}

// inFlight waits until the worker has started its n-th batch.
func inFlight(t *testing.T, s *Store, n int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for s.Stats().Batches < n {
		if time.Now().After(deadline) {
			t.Fatalf("batch %d never started", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCoalescedAppendsAreDecidedInArrivalOrder(t *testing.T) {
	t.Parallel()
	s, db := newInternalStore(t)
	st := Stream{ID: ulid.Make(), Type: "test"}
	enqueue, release := queueBehindLock(t, s, db, st)

	first := enqueue(st, NoStream(), oneEvent()) // batch 1, blocked on the lock
	inFlight(t, s, 1)
	const n = 20
	var chans []<-chan outcome
	for v := 1; v <= n; v++ { // batch 2: Exact(1) … Exact(n), each sees the one before
		chans = append(chans, enqueue(st, Exact(int64(v)), oneEvent()))
	}
	stale := enqueue(st, Exact(3), oneEvent()) // the stream is at n+1 by now
	wrongType := enqueue(Stream{ID: st.ID, Type: "other"}, Any(), oneEvent())
	release()

	if o := <-first; o.err != nil || o.res.ToVersion != 1 {
		t.Fatalf("first append: %+v %v", o.res, o.err)
	}
	var lastPos int64
	for i, ch := range chans {
		o := <-ch
		if o.err != nil {
			t.Fatalf("Exact(%d): %v", i+1, o.err)
		}
		if o.res.FromVersion != int64(i+2) || o.res.Position <= lastPos {
			t.Fatalf("Exact(%d): result %+v after position %d", i+1, o.res, lastPos)
		}
		lastPos = o.res.Position
	}
	var wev *WrongExpectedVersionError
	if o := <-stale; !errors.As(o.err, &wev) || wev.Actual != n+1 {
		t.Fatalf("stale Exact(3): want wrong version with actual %d, got %v", n+1, o.err)
	}
	if o := <-wrongType; !errors.Is(o.err, ErrStreamTypeMismatch) {
		t.Fatalf("other stream type: want ErrStreamTypeMismatch, got %v", o.err)
	}
	if got := s.Stats(); got.Batches != 2 || got.Requests != n+3 {
		t.Fatalf("want the held append's batch and one batch of the %d queued requests, got %+v", n+2, got)
	}
	if v, _ := s.StreamVersion(context.Background(), st); v != n+1 {
		t.Fatalf("stream version %d, want %d", v, n+1)
	}
}

func TestRetriesInsideOneBatch(t *testing.T) {
	t.Parallel()
	s, db := newInternalStore(t)
	ctx := context.Background()
	blocker := Stream{ID: ulid.Make(), Type: "test"}
	stored := Stream{ID: ulid.Make(), Type: "test"}
	storedEvs := append(oneEvent(), oneEvent()...)
	before, err := s.Append(ctx, stored, NoStream(), storedEvs)
	if err != nil {
		t.Fatal(err)
	}
	enqueue, release := queueBehindLock(t, s, db, blocker)
	_ = enqueue(blocker, Any(), oneEvent())
	inFlight(t, s, 2)

	st := Stream{ID: ulid.Make(), Type: "test"}
	evs := append(oneEvent(), oneEvent()...)
	a := enqueue(st, NoStream(), evs)
	// The same append again, as a client retrying before the first
	// answered: a retry of a request of the same batch, with a now stale
	// expectation.
	b := enqueue(st, NoStream(), evs)
	// Part of the same ids: not a retry.
	c := enqueue(st, Any(), []EventData{evs[1], oneEvent()[0]})
	// A retry of an append stored before the batch.
	d := enqueue(stored, NoStream(), storedEvs)
	// Something else on the stream after all that.
	e := enqueue(st, Exact(2), oneEvent())
	release()

	oa, ob, oc, od, oe := <-a, <-b, <-c, <-d, <-e
	if oa.err != nil || oa.res.Replayed || oa.res.ToVersion != 2 {
		t.Fatalf("first: %+v %v", oa.res, oa.err)
	}
	if ob.err != nil || !ob.res.Replayed || ob.res.FromVersion != 1 || ob.res.ToVersion != 2 || ob.res.Position != oa.res.Position {
		t.Fatalf("in-batch retry: %+v %v (first %+v)", ob.res, ob.err, oa.res)
	}
	if !errors.Is(oc.err, ErrEventIDConflict) {
		t.Fatalf("partial overlap: want ErrEventIDConflict, got %v", oc.err)
	}
	if od.err != nil || !od.res.Replayed || od.res != (AppendResult{before.FromVersion, before.ToVersion, before.Position, true}) {
		t.Fatalf("retry of a stored append: %+v %v (stored %+v)", od.res, od.err, before)
	}
	if oe.err != nil || oe.res.FromVersion != 3 {
		t.Fatalf("append after the retries: %+v %v", oe.res, oe.err)
	}
	if got := s.Stats(); got.Batches != 3 { // the stored one, the blocker, the batch
		t.Fatalf("want 3 batches, got %+v", got)
	}
	evsRead, err := s.ReadStream(ctx, st, 1, 10)
	if err != nil || len(evsRead) != 3 {
		t.Fatalf("stream holds %d events (%v), want 3", len(evsRead), err)
	}
}

// One request the database refuses (jsonb rejects \u0000, which
// encoding/json accepts) must fail alone, not the batch it shares.
func TestARefusedRequestFailsAlone(t *testing.T) {
	t.Parallel()
	s, db := newInternalStore(t)
	blocker := Stream{ID: ulid.Make(), Type: "test"}
	enqueue, release := queueBehindLock(t, s, db, blocker)
	_ = enqueue(blocker, Any(), oneEvent())
	inFlight(t, s, 1)
	good1 := enqueue(Stream{ID: ulid.Make(), Type: "test"}, NoStream(), oneEvent())
	bad := enqueue(Stream{ID: ulid.Make(), Type: "test"}, NoStream(),
		[]EventData{{ID: ulid.Make(), Type: "Happened", Data: json.RawMessage(`{"s":"\u0000"}`)}})
	noPartition := enqueue(Stream{ID: ulid.MustNew(ulid.Timestamp(time.Date(2019, 5, 1, 0, 0, 0, 0, time.UTC)), ulid.DefaultEntropy()), Type: "test"},
		Any(), oneEvent())
	good2 := enqueue(Stream{ID: ulid.Make(), Type: "test"}, NoStream(), oneEvent())
	release()
	for name, ch := range map[string]<-chan outcome{"first": good1, "last": good2} {
		if o := <-ch; o.err != nil {
			t.Errorf("%s good request: %v", name, o.err)
		}
	}
	if o := <-bad; o.err == nil {
		t.Error("the \\u0000 request succeeded")
	}
	if o := <-noPartition; !errors.Is(o.err, ErrNoPartition) {
		t.Errorf("want ErrNoPartition, got %v", o.err)
	}
}

// The queue is bounded: a full queue makes Append wait for room, and give up
// with its ctx, having written nothing.
func TestFullQueueBlocksUntilCtxEnds(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	s, err := NewWithGroupCommit(db.Command, GroupCommit{QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := s.EnsurePartitions(context.Background(), now, now); err != nil {
		t.Fatal(err)
	}
	blocker := Stream{ID: ulid.Make(), Type: "test"}
	enqueue, release := queueBehindLock(t, s, db, blocker)
	held := enqueue(blocker, Any(), oneEvent()) // taken, in flight
	inFlight(t, s, 1)
	queued := enqueue(Stream{ID: ulid.Make(), Type: "test"}, Any(), oneEvent())

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	st := Stream{ID: ulid.Make(), Type: "test"}
	if _, err := s.Append(ctx, st, Any(), oneEvent()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the ctx's deadline while the queue is full, got %v", err)
	}
	release()
	for _, ch := range []<-chan outcome{held, queued} {
		if o := <-ch; o.err != nil {
			t.Fatal(o.err)
		}
	}
	if v, _ := s.StreamVersion(context.Background(), st); v != 0 {
		t.Fatalf("the refused append wrote version %d", v)
	}
}

// No goroutine outlives the appends: the worker exits when the queue is empty.
func TestWorkerExitsWhenIdle(t *testing.T) {
	t.Parallel()
	s, _ := newInternalStore(t)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Append(context.Background(), Stream{ID: ulid.Make(), Type: "test"}, NoStream(), oneEvent()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(time.Minute)
	for {
		s.gc.mu.Lock()
		running := s.gc.running
		s.gc.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker is still running with nothing queued")
		}
		time.Sleep(time.Millisecond)
	}
	if st := s.Stats(); st.Requests != 32 || st.Batches > 32 {
		t.Fatalf("stats %+v", st)
	}
}
