package hub

import (
	"container/heap"
	"context"
	"time"

	"github.com/orderflow/orderflow/eventstore"
)

// GapGrace is how long the sequencer waits for a missing position to arrive
// from another partition before it asks the store. Kafka partitions are
// fetched independently, so a position's successor often arrives first; a
// few tens of milliseconds cover that skew, while a true gap (a rolled-back
// transaction) costs one short store read after it.
const GapGrace = 30 * time.Millisecond

// fillPage bounds one store read of the sequencer.
const fillPage = 1000

// allReader is the part of the store the sequencer needs.
type allReader interface {
	ReadAll(ctx context.Context, after int64, limit int) ([]eventstore.RecordedEvent, error)
}

// sequencer turns events arriving in any order, with duplicates, into the
// global log in position order without gaps or duplicates.
//
// Ordering argument. last is the position of the last emitted event; every
// event at or below it has been emitted or never existed. An event is
// emitted from the heap only when it is last's successor. When the heap's
// head is not, fill reads the store for (last, head]: positions become
// visible in commit order, and head is visible (it reached Kafka, which the
// relay feeds only with committed events), so that read returns every event
// that will ever exist in the range — a position it does not return belongs
// to a rolled-back transaction. Emitting the read in order and dropping
// copies at or below last keeps the output exact.
//
// The store, not Kafka, decides how far last goes. A Kafka event whose
// position that read does not reach is not an event of this store: one the
// hub's Verifier let through although the relay never wrote it (a key that
// leaked, a relay of another database), or one from before a restore that
// rewound the positions. It is dropped (onDrop) and last stays where the
// store ends, so one absurd position (2^62) costs one store read instead of
// hiding every later real event below it until a restart. Nothing real is
// lost by it: a real event is in the store, and if the store was not
// showing it yet (a replica behind), a later fill (the next gap, the idle
// poll) reads and emits it in order.
//
// Not safe for concurrent use: it belongs to the hub's ingest goroutine.
type sequencer struct {
	store  allReader
	last   int64
	h      eventHeap
	emit   func(eventstore.RecordedEvent)
	onFill func(events int)
	onDrop func(eventstore.RecordedEvent) // a Kafka event the store does not hold
}

// push adds an event from Kafka and emits whatever became contiguous.
func (s *sequencer) push(e eventstore.RecordedEvent) {
	if e.Position <= s.last {
		return // a redelivery, or already taken from the store
	}
	heap.Push(&s.h, e)
	s.drain()
}

func (s *sequencer) drain() {
	for len(s.h) > 0 {
		top := s.h[0]
		switch {
		case top.Position <= s.last:
			heap.Pop(&s.h)
		case top.Position == s.last+1:
			heap.Pop(&s.h)
			s.last = top.Position
			s.emit(top)
		default:
			return
		}
	}
}

// waiting reports whether events wait behind a gap (after drain).
func (s *sequencer) waiting() bool { return len(s.h) > 0 }

// pending is how many events are held.
func (s *sequencer) pending() int { return len(s.h) }

// fillGap reads the store up to the heap's head and emits the result.
func (s *sequencer) fillGap(ctx context.Context) error {
	if len(s.h) == 0 {
		return nil
	}
	return s.fill(ctx, s.h[0].Position)
}

// fill emits every stored event in (last, upTo], then drains the heap.
// upTo is a position seen on Kafka (visible in the store, if it is real) or
// the store's head.
func (s *sequencer) fill(ctx context.Context, upTo int64) error {
	n := 0
	defer func() {
		if n > 0 || upTo > s.last {
			s.onFill(n)
		}
	}()
	for s.last < upTo {
		// At most upTo-last positions exist in the range. A gap may make
		// the read return events above upTo: they are visible, so every
		// event below them is too, and emitting them is just as exact.
		limit := int(min(upTo-s.last, fillPage))
		evs, err := s.store.ReadAll(ctx, s.last, limit)
		if err != nil {
			return err
		}
		for _, e := range evs {
			s.last = e.Position
			n++
			s.emit(e)
		}
		if len(evs) < limit && s.last < upTo {
			// The store holds nothing more: the rest of the range never
			// existed, in this store. What Kafka had there is not
			// believed (the ordering argument above).
			s.dropUpTo(upTo)
			break
		}
	}
	s.drain()
	return nil
}

// dropUpTo removes the held events up to upTo, reporting those above last:
// fill found them in Kafka but not in the store.
func (s *sequencer) dropUpTo(upTo int64) {
	for len(s.h) > 0 && s.h[0].Position <= upTo {
		e := heap.Pop(&s.h).(eventstore.RecordedEvent)
		if e.Position > s.last {
			s.onDrop(e)
		}
	}
}

// eventHeap is a min-heap by position.
type eventHeap []eventstore.RecordedEvent

func (h eventHeap) Len() int           { return len(h) }
func (h eventHeap) Less(i, j int) bool { return h[i].Position < h[j].Position }
func (h eventHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)        { *h = append(*h, x.(eventstore.RecordedEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = eventstore.RecordedEvent{}
	*h = old[:len(old)-1]
	return e
}
