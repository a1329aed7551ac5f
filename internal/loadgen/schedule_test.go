package loadgen

import (
	"testing"
	"time"
)

func TestScheduleHandsOutEverySlotDueBeforeTheEndInOrder(t *testing.T) {
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := NewSchedule(start, 1000, time.Second)
	if s.Slots() != 1000 {
		t.Fatalf("slots %d, want 1000", s.Slots())
	}
	for want := int64(0); want < 1000; want++ {
		i, due, ok := s.Take()
		if !ok || i != want {
			t.Fatalf("take %d: got slot %d ok=%v", want, i, ok)
		}
		if wantDue := start.Add(time.Duration(want) * time.Millisecond); !due.Equal(wantDue) {
			t.Fatalf("slot %d due %s, want %s", i, due, wantDue)
		}
	}
	if _, _, ok := s.Take(); ok {
		t.Fatal("a slot beyond the end was handed out")
	}
}

func TestScheduleCountsAPartialIntervalAsASlot(t *testing.T) {
	for _, c := range []struct {
		rate float64
		d    time.Duration
		want int64
	}{
		{1500, time.Second, 1500},
		{1500, 60 * time.Second, 90000},
		{3, 1500 * time.Millisecond, 5}, // 0, 0.33, 0.67, 1, 1.33
		{0.5, 10 * time.Second, 5},
		{1000, 0, 0},
	} {
		if got := NewSchedule(time.Time{}, c.rate, c.d).Slots(); got != c.want {
			t.Errorf("rate %g for %s: %d slots, want %d", c.rate, c.d, got, c.want)
		}
	}
}

func TestScheduleStopReturnsTheFirstSlotNeverHandedOut(t *testing.T) {
	s := NewSchedule(time.Time{}, 10, time.Second)
	for range 4 {
		s.Take()
	}
	if first := s.Stop(); first != 4 {
		t.Fatalf("stop: first unsent %d, want 4", first)
	}
	if _, _, ok := s.Take(); ok {
		t.Fatal("a slot was handed out after Stop")
	}
	if first := s.Stop(); first != s.Slots() {
		t.Fatalf("second stop: %d, want %d (nothing left)", first, s.Slots())
	}
}
