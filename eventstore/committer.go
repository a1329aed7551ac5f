package eventstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// GroupCommit tunes how Store.Append coalesces concurrent appends into one
// transaction. The zero value is the default; see DESIGN.md for the design.
type GroupCommit struct {
	// MaxBatch is the most requests one transaction takes. Default 256.
	MaxBatch int
	// MaxEvents stops a batch from taking more requests once it holds this
	// many events (a request is never split, so a batch may hold up to
	// MaxEvents+MaxAppend-1). Default 4096.
	MaxEvents int
	// QueueSize bounds the requests waiting for a transaction. When it is
	// full, Append blocks until there is room or its ctx ends (it then
	// returns ctx.Err() and nothing was written). Default 4096.
	QueueSize int
	// Timeout bounds one batch's statement; callers' contexts do not, since
	// one caller giving up must not fail the others. Default 30s.
	Timeout time.Duration
	// Disabled makes Append run in the caller's goroutine, one transaction
	// per call (the path before group commit; for comparison).
	Disabled bool
}

func (g *GroupCommit) setDefaults() {
	if g.MaxBatch == 0 {
		g.MaxBatch = 256
	}
	if g.MaxEvents == 0 {
		g.MaxEvents = 4096
	}
	if g.QueueSize == 0 {
		g.QueueSize = 4096
	}
	if g.Timeout == 0 {
		g.Timeout = 30 * time.Second
	}
}

// Validate reports a setting that cannot work.
func (g GroupCommit) Validate() error {
	if g.MaxBatch < 1 || g.MaxEvents < 1 || g.QueueSize < 1 || g.Timeout <= 0 {
		return fmt.Errorf("eventstore: group commit settings must be positive: %+v", g)
	}
	return nil
}

// CommitStats counts group commit's work since the store was made.
type CommitStats struct {
	Batches  int64 // transactions (statements) run for Append
	Requests int64 // Append calls they carried
	Events   int64 // events in those requests
}

// Stats returns the group-commit counters (zero when it is disabled).
func (s *Store) Stats() CommitStats {
	if s.gc == nil {
		return CommitStats{}
	}
	return CommitStats{Batches: s.gc.batches.Load(), Requests: s.gc.requests.Load(), Events: s.gc.events.Load()}
}

// committer is group commit. Goroutines: at most one batch runs at a time,
// in the goroutine of an Append that found the committer idle (the leader:
// it runs one batch, which holds its own request) or, when more requests
// queued meanwhile, in one worker goroutine that the leader starts and that
// exits when it finds the queue empty. So a store needs no Run or Close, and
// no goroutine outlives the last Append.
//
// The worker takes whatever is queued (up to MaxBatch requests and MaxEvents
// events) and runs it as one events_append_batch statement; while that
// statement is in flight, new requests queue and form the next batch
// ("natural batching": no timer, no added latency when idle, batches as
// large as the load makes them).
type committer struct {
	pool *pgxpool.Pool
	cfg  GroupCommit

	// queue is bounded by QueueSize; overflow policy: Append blocks with its
	// ctx until there is room.
	queue chan *pending

	mu      sync.Mutex // guards running
	running bool

	batches, requests, events atomic.Int64
	accepted                  atomic.Int64 // requests queued so far; tests wait on it

	// pendings recycles requests with their channels. A pending goes back
	// only from the caller that received its result: the worker's send of
	// the result is its last touch of it. One whose caller left early stays
	// with its batch and is collected.
	pendings sync.Pool
}

type pending struct {
	ctx  context.Context
	req  encoded
	done chan BatchResult // buffered: the worker never blocks on a caller that left
}

func newCommitter(pool *pgxpool.Pool, cfg GroupCommit) *committer {
	c := &committer{pool: pool, cfg: cfg, queue: make(chan *pending, cfg.QueueSize)}
	c.pendings.New = func() any { return &pending{done: make(chan BatchResult, 1)} }
	return c
}

// append queues req and waits for its result; BatchResult.Err is any error.
func (c *committer) append(ctx context.Context, req encoded) BatchResult {
	p := c.pendings.Get().(*pending)
	p.ctx, p.req = ctx, req
	select {
	case c.queue <- p:
	case <-ctx.Done():
		c.recycle(p)
		return BatchResult{Err: fmt.Errorf("append to %s: %w", req.stream.ID, ctx.Err())}
	}
	c.accepted.Add(1)
	// The send above happens before this check, and the worker decides to
	// exit under mu after finding the queue empty: either it sees p, or we
	// see running == false and start a new worker.
	c.mu.Lock()
	if !c.running {
		c.running = true
		c.mu.Unlock()
		c.lead()
	} else {
		c.mu.Unlock()
	}
	select {
	case r := <-p.done:
		c.recycle(p)
		return r
	case <-ctx.Done():
		// The batch may still commit this request: the caller retries with
		// the same event IDs or key, which is safe.
		return BatchResult{Err: fmt.Errorf("append to %s: %w", req.stream.ID, ctx.Err())}
	}
}

// recycle returns a pending whose channel is empty and which no batch holds.
func (c *committer) recycle(p *pending) {
	*p = pending{done: p.done} // drop the caller's ctx and events
	c.pendings.Put(p)
}

// lead runs one batch in the goroutine of the Append that found the
// committer idle, which holds that Append's own request: a lone writer pays
// no goroutine hand-off. If more requests queued meanwhile, a worker takes
// over, so this caller returns after one batch. The leader waits for its
// batch even if its ctx ends meanwhile (the batch is bounded by Timeout):
// it carries other callers' requests.
func (c *committer) lead() {
	if ps := c.take(make([]*pending, 0, 8)); len(ps) > 0 {
		c.commit(ps)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.running = false
		return
	}
	go c.work()
}

func (c *committer) work() {
	buf := make([]*pending, 0, c.cfg.MaxBatch)
	for {
		buf = c.take(buf[:0])
		if len(buf) == 0 {
			c.mu.Lock()
			if len(c.queue) == 0 {
				c.running = false
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			continue
		}
		c.commit(buf)
		clear(buf) // drop references to finished requests
	}
}

// take moves queued requests into buf without waiting. A request whose
// caller already gave up is answered and skipped: nothing of it was sent.
func (c *committer) take(buf []*pending) []*pending {
	events := 0
	for len(buf) < c.cfg.MaxBatch && events < c.cfg.MaxEvents {
		select {
		case p := <-c.queue:
			if err := p.ctx.Err(); err != nil {
				p.done <- BatchResult{Err: err}
				continue
			}
			buf = append(buf, p)
			events += len(p.req.events)
		default:
			return buf
		}
	}
	return buf
}

// commit runs one batch and answers every request in it.
func (c *committer) commit(ps []*pending) {
	results := c.run(ps)
	for i, p := range ps {
		p.done <- results[i]
	}
}

func (c *committer) run(ps []*pending) []BatchResult {
	results := make([]BatchResult, len(ps))
	events := 0
	for _, p := range ps {
		events += len(p.req.events)
	}
	b := newBatch(len(ps), events)
	for i, p := range ps {
		b.add(i, &p.req)
	}
	c.batches.Add(1)
	c.requests.Add(int64(len(ps)))
	c.events.Add(int64(events))

	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	err := b.exec(ctx, c.pool, results)
	if err == nil {
		return results
	}
	// The server refused the statement and rolled it back: one request's
	// data (say, a string jsonb refuses, or a stream without a partition)
	// must not fail the others. Run each alone to tell whose it is.
	if isStatementError(err) && len(ps) > 1 {
		for i, p := range ps {
			results[i] = c.runOne(p)
		}
		return results
	}
	// The connection failed or timed out: the commit may or may not have
	// happened, for every request alike. Each caller gets the error and may
	// retry with the same event IDs.
	for i, p := range ps {
		results[i] = BatchResult{Err: fmt.Errorf("append to %s: %w", p.req.stream.ID, err)}
	}
	return results
}

func (c *committer) runOne(p *pending) BatchResult {
	results := make([]BatchResult, 1)
	b := newBatch(1, len(p.req.events))
	b.add(0, &p.req)
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	c.batches.Add(1)
	if err := b.exec(ctx, c.pool, results); err != nil {
		return BatchResult{Err: fmt.Errorf("append to %s: %w", p.req.stream.ID, err)}
	}
	return results[0]
}
