package loadgen

import (
	"math"
	"sync/atomic"
	"time"
)

// Schedule is the send times of an open-loop run: slot i is due at
// start + i/rate, for every slot due before start + d. Clients take slots
// in order, whatever they are doing, and measure each command from its
// slot's due time, not from when they got round to sending it: a server
// that stalls is charged for every command that should have been sent
// meanwhile (no coordinated omission). Safe for concurrent use.
type Schedule struct {
	start time.Time
	rate  float64
	slots int64
	next  atomic.Int64
}

// NewSchedule returns the schedule of rate slots per second for d from
// start.
func NewSchedule(start time.Time, rate float64, d time.Duration) *Schedule {
	// Slot i is in when i/rate < d: i < d·rate.
	n := int64(math.Ceil(d.Seconds() * rate))
	return &Schedule{start: start, rate: rate, slots: n}
}

// At is the due time of slot i.
func (s *Schedule) At(i int64) time.Time {
	return s.start.Add(time.Duration(float64(i) * float64(time.Second) / s.rate))
}

// Slots is the number of slots in the schedule.
func (s *Schedule) Slots() int64 { return s.slots }

// Take hands out the next slot and its due time; ok is false once every
// slot is taken.
func (s *Schedule) Take() (i int64, due time.Time, ok bool) {
	i = s.next.Add(1) - 1
	if i >= s.slots {
		return i, time.Time{}, false
	}
	return i, s.At(i), true
}

// Stop takes every remaining slot, so that Take returns false from now on,
// and returns the first slot that was never handed out.
func (s *Schedule) Stop() int64 {
	return min(s.next.Swap(s.slots), s.slots)
}
