package kafka

import (
	"slices"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// handled records that batch is done, per partition: its last message and
// how many it had.
func handled(batch []kafkago.Message, parts map[int]*partitionState) {
	type count struct{ partition, n, last int }
	var counts []count // a batch holds a few partitions: a linear search is cheapest
	for i, m := range batch {
		k := slices.IndexFunc(counts, func(c count) bool { return c.partition == m.Partition })
		if k < 0 {
			counts = append(counts, count{partition: m.Partition})
			k = len(counts) - 1
		}
		counts[k].n++
		counts[k].last = i
	}
	for _, c := range counts {
		parts[c.partition].handled(c.n, batch[c.last])
	}
}

// Lag is how far a member is behind on the partitions it holds, by what its
// readers last heard from the broker.
type Lag struct {
	// Events not handled yet, summed over the partitions.
	Events int64
	// Oldest is the age (by Kafka timestamp) of the oldest message not
	// handled yet: exact for a partition whose messages are all fetched,
	// otherwise the age of the last message handled, which is older; 0 when
	// caught up.
	Oldest time.Duration
}

// Lag reports this member's lag at now. Between generations (a rebalance)
// it holds no partitions and reports none.
func (c *BatchConsumer) Lag(now time.Time) Lag {
	c.mu.Lock()
	defer c.mu.Unlock()
	var l Lag
	for _, st := range c.parts {
		n, age := st.lag(now)
		l.Events += n
		l.Oldest = max(l.Oldest, age)
	}
	return l
}

// partitionState is one partition's progress, written by its reader and by
// the handling goroutine, read by Lag and the committer.
type partitionState struct {
	mu      sync.Mutex
	hwm     int64     // high watermark at the latest fetch; -1 before any
	next    int64     // next offset to handle; -1 until known
	done    int64     // offset after the last handled message; -1 before any
	pending int       // fetched, not handled yet
	since   time.Time // time of the oldest pending message (see handled)
	last    time.Time // time of the last handled message
}

func newPartitionState(offset int64) *partitionState {
	st := &partitionState{hwm: -1, next: -1, done: -1}
	if offset >= 0 {
		st.next = offset
	}
	return st
}

func (st *partitionState) fetched(m kafkago.Message) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.hwm = max(st.hwm, m.HighWaterMark)
	if st.next < 0 {
		st.next = m.Offset
	}
	if st.pending == 0 {
		st.since = m.Time
	}
	st.pending++
}

func (st *partitionState) handled(n int, last kafkago.Message) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.next, st.done, st.last = last.Offset+1, last.Offset+1, last.Time
	st.pending -= n
	st.since = time.Time{}
	if st.pending > 0 {
		// The oldest pending message came after last; its own time is
		// known only to the queue. last's time bounds its age from above,
		// and closely under load, when messages are dense.
		st.since = last.Time
	}
}

func (st *partitionState) handledNext() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.done
}

func (st *partitionState) lag(now time.Time) (int64, time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.hwm < 0 || st.next < 0 || st.hwm <= st.next {
		return 0, 0
	}
	t := st.since
	if t.IsZero() {
		t = st.last
	}
	if t.IsZero() {
		return st.hwm - st.next, 0
	}
	return st.hwm - st.next, max(now.Sub(t), 0)
}
