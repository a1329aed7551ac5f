package hub

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/orderflow/orderflow/eventstore"
)

// fakeLog is a store whose positions have holes (rolled-back transactions).
type fakeLog struct {
	evs   []eventstore.RecordedEvent
	reads int
}

func (f *fakeLog) ReadAll(_ context.Context, after int64, limit int) ([]eventstore.RecordedEvent, error) {
	f.reads++
	var out []eventstore.RecordedEvent
	for _, e := range f.evs {
		if e.Position > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func TestSequencerEmitsTheLogInOrderDespiteShuffleDuplicatesAndHoles(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		log := &fakeLog{}
		var want []int64
		for p := int64(1); p <= 500; p++ {
			if rng.IntN(20) == 0 {
				continue // rolled back: never exists
			}
			log.evs = append(log.evs, eventstore.RecordedEvent{Position: p})
			want = append(want, p)
		}
		// Kafka: a shuffle with duplicates, and some events never arrive
		// before the store is asked (they are lost in the "grace").
		var in []eventstore.RecordedEvent
		for _, e := range log.evs {
			if rng.IntN(10) != 0 {
				in = append(in, e)
			}
			if rng.IntN(10) == 0 {
				in = append(in, e)
			}
		}
		rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		var got []int64
		s := &sequencer{store: log, emit: func(e eventstore.RecordedEvent) { got = append(got, e.Position) }, onFill: func(int) {},
			onDrop: func(e eventstore.RecordedEvent) {
				t.Fatalf("seed %d: dropped %d, which the store holds", seed, e.Position)
			}}
		for i, e := range in {
			s.push(e)
			if i%7 == 0 && s.waiting() { // the grace timer fired
				if err := s.fillGap(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.fill(context.Background(), 500); err != nil { // the idle poll up to the head
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: emitted %v\nwant %v", seed, got, want)
		}
	}
}

// A position the store does not hold, however far beyond its head (a
// signed message of a leaked key, a topic of another database), is dropped
// at the first fill; the real events before and after it go out in order.
func TestSequencerDropsAPositionTheStoreDoesNotHoldAndKeepsGoing(t *testing.T) {
	log := &fakeLog{}
	for p := int64(1); p <= 10; p++ {
		log.evs = append(log.evs, eventstore.RecordedEvent{Position: p})
	}
	var got, dropped []int64
	s := &sequencer{store: log, emit: func(e eventstore.RecordedEvent) { got = append(got, e.Position) }, onFill: func(int) {},
		onDrop: func(e eventstore.RecordedEvent) { dropped = append(dropped, e.Position) }}
	ctx := context.Background()
	for _, p := range []int64{1, 2, 3, 1 << 62, 5} {
		s.push(eventstore.RecordedEvent{Position: p})
	}
	if err := s.fillGap(ctx); err != nil { // the grace timer: 4 is missing
		t.Fatal(err)
	}
	if err := s.fillGap(ctx); err != nil { // and again: 2^62 heads the heap
		t.Fatal(err)
	}
	if s.waiting() || !slices.Equal(dropped, []int64{1 << 62}) || s.last != 10 {
		t.Fatalf("waiting %v, dropped %v, last %d; want the forged position dropped and last at the store's head", s.waiting(), dropped, s.last)
	}
	for p := int64(11); p <= 13; p++ {
		log.evs = append(log.evs, eventstore.RecordedEvent{Position: p})
		s.push(eventstore.RecordedEvent{Position: p})
	}
	want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
	if !slices.Equal(got, want) {
		t.Fatalf("emitted %v, want %v", got, want)
	}
}
