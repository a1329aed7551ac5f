package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"
)

// BatchConsumerConfig configures a BatchConsumer. Zero values mean the
// documented defaults.
type BatchConsumerConfig struct {
	Config
	// GroupID is the consumer group. Required.
	GroupID string
	// Topic is the topic read. Required.
	Topic string
	// StartOffset is where a partition without a committed offset starts:
	// FirstOffset (default) or LastOffset.
	StartOffset int64
	// MaxBatch bounds a batch, in messages, and the queue between the
	// partitions' readers and the handler. Default 1000.
	MaxBatch int
	// Linger is how long a batch waits to fill after its first message.
	// Default 10ms; negative means no wait (a batch is what was already
	// fetched). Under load a batch is full before the linger ends; at
	// moderate rates it trades that much latency for fewer, larger batches
	// (each costs the handler a fixed amount: for the projector, three round
	// trips and a commit).
	Linger time.Duration
	// CommitInterval is how often the offsets of handled batches are
	// committed: one request for all of the member's partitions. Default
	// 1s. A crash replays at most what was handled since the last commit.
	CommitInterval time.Duration
	// RetryInitial and RetryMax space the redeliveries of a batch whose
	// handler failed: RetryInitial, doubling up to RetryMax. Defaults
	// 100ms and 5s.
	RetryInitial, RetryMax time.Duration
	// KeyMetadata names the metadata field Message copies the Kafka key
	// into. Default DefaultKeyMetadata.
	KeyMetadata string
	// MaxWait is the longest a fetch waits on the broker for new data; it
	// also bounds how long shutdown waits for an idle fetch. Default 500ms.
	MaxWait time.Duration
	// Consumer group timings; defaults are kafka-go's (3s, 30s, 30s, 5s).
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	JoinGroupBackoff  time.Duration
}

func (c *BatchConsumerConfig) setDefaults() {
	if c.StartOffset == 0 {
		c.StartOffset = kafkago.FirstOffset
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 1000
	}
	if c.Linger == 0 {
		c.Linger = 10 * time.Millisecond
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = 100 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.KeyMetadata == "" {
		c.KeyMetadata = DefaultKeyMetadata
	}
	if c.MaxWait == 0 {
		c.MaxWait = 500 * time.Millisecond
	}
}

// Validate checks c after defaults.
func (c BatchConsumerConfig) Validate() error {
	c.setDefaults()
	errs := []error{c.Config.Validate()}
	if c.GroupID == "" || c.Topic == "" {
		errs = append(errs, errors.New("kafka batch consumer: GroupID and Topic are required"))
	}
	if c.StartOffset != kafkago.FirstOffset && c.StartOffset != kafkago.LastOffset {
		errs = append(errs, fmt.Errorf("kafka batch consumer: StartOffset %d is neither FirstOffset nor LastOffset", c.StartOffset))
	}
	if c.MaxBatch < 1 || c.CommitInterval < 0 || c.RetryInitial < 0 || c.RetryMax < c.RetryInitial {
		errs = append(errs, errors.New("kafka batch consumer: MaxBatch must be >= 1, CommitInterval and RetryInitial >= 0, RetryMax >= RetryInitial"))
	}
	return errors.Join(errs...)
}

// BatchHandler handles a batch: each partition's messages in offset order,
// partitions interleaved as they arrived. It returns nil once the batch's
// effect is durable; then its offsets may be committed. An error hands the
// same batch over again after a pause, so the handler must be idempotent
// (it always must: Kafka redelivers after a crash or a rebalance). ctx ends
// drainTimeout after the partitions are revoked or the consumer stops: a
// batch handed over before is let finish, and counts if it succeeds; msgs
// is reused after the handler returns.
type BatchHandler func(ctx context.Context, msgs []kafkago.Message) error

// BatchConsumer reads a topic as a member of a consumer group and hands the
// messages of all its partitions to one handler in batches, committing
// offsets by interval. See DESIGN.md.
type BatchConsumer struct {
	cfg    BatchConsumerConfig
	dialer *kafkago.Dialer
	log    *slog.Logger

	mu    sync.Mutex
	parts map[int]*partitionState // the current generation's partitions
}

// NewBatchConsumer builds a BatchConsumer. logger may be nil.
func NewBatchConsumer(cfg BatchConsumerConfig, logger *slog.Logger) (*BatchConsumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dialer, err := cfg.Dialer()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "kafka_batch_consumer", "group", cfg.GroupID, "topic", cfg.Topic)
	return &BatchConsumer{cfg: cfg, dialer: dialer, log: logger}, nil
}

// Message is km as the Subscriber would deliver it, for handing one message
// of a batch to watermill (a Router's handler and middleware).
func (c *BatchConsumer) Message(km kafkago.Message) *message.Message {
	return toMessage(km, c.cfg.KeyMetadata)
}

// Run consumes until ctx ends, then makes a last commit of what was handled
// and leaves the group. It returns after every goroutine it started exited.
func (c *BatchConsumer) Run(ctx context.Context, h BatchHandler) error {
	cg, err := newConsumerGroup(c.cfg.Config, c.dialer, c.cfg.GroupID, c.cfg.Topic, c.cfg.StartOffset, groupTimings{
		heartbeat: c.cfg.HeartbeatInterval, session: c.cfg.SessionTimeout,
		rebalance: c.cfg.RebalanceTimeout, joinBackoff: c.cfg.JoinGroupBackoff,
	}, c.log)
	if err != nil {
		return fmt.Errorf("batch consumer %s: %w", c.cfg.GroupID, err)
	}
	for {
		gen, ok := nextGeneration(ctx, cg, c.log)
		if !ok {
			break
		}
		gen.Start(func(genCtx context.Context) { c.runGeneration(ctx, genCtx, gen, h) })
	}
	// Ends the generation, waits for runGeneration (and its last commit),
	// and leaves the group.
	return cg.Close()
}

// runGeneration consumes the partitions of one generation until it ends:
// a reader goroutine per partition feeds one queue, one goroutine takes
// batches from it and hands them to h, and this goroutine commits.
func (c *BatchConsumer) runGeneration(ctx, genCtx context.Context, gen *kafkago.Generation, h BatchHandler) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(genCtx, cancel)()
	log := c.log.With("generation", gen.ID)
	assigned := gen.Assignments[c.cfg.Topic]
	log.Debug("consumer group: generation started", "partitions", len(assigned))

	parts := make(map[int]*partitionState, len(assigned))
	committed := make(map[int]int64, len(assigned))
	for _, pa := range assigned {
		parts[pa.ID] = newPartitionState(pa.Offset)
		committed[pa.ID] = pa.Offset
	}
	c.mu.Lock()
	c.parts = parts
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.parts = nil // revoked: this member no longer reports their lag
		c.mu.Unlock()
	}()

	// Bounded at MaxBatch messages: when it is full the readers block, then
	// kafka-go's readers fill their own queues and stop fetching. Nothing
	// is dropped; the backlog stays in Kafka.
	queue := make(chan kafkago.Message, c.cfg.MaxBatch)
	var wg sync.WaitGroup
	for _, pa := range assigned {
		wg.Go(func() {
			if err := c.fetch(ctx, log, pa.ID, pa.Offset, parts[pa.ID], queue); err != nil {
				// Ending the generation's work ends the generation: the
				// group rejoins and assigns the partition afresh.
				log.Error("partition reader failed", "partition", pa.ID, "err", err)
				cancel()
			}
		})
	}
	wg.Go(func() { c.handleLoop(ctx, log, queue, parts, h) })

	commit := func() {
		offsets := map[int]int64{}
		for id, st := range parts {
			if next := st.handledNext(); next >= 0 && next != committed[id] {
				offsets[id] = next
			}
		}
		if len(offsets) == 0 {
			return
		}
		if err := gen.CommitOffsets(map[string]map[int]int64{c.cfg.Topic: offsets}); err != nil {
			// Retried on the next tick; what is not committed is handled
			// again after a restart or a rebalance, and skipped there.
			log.Warn("commit failed; will retry", "err", err)
			return
		}
		for id, next := range offsets {
			committed[id] = next
		}
	}
	tick := time.NewTicker(max(c.cfg.CommitInterval, time.Millisecond))
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-tick.C:
			commit()
		case <-ctx.Done():
		}
	}
	wg.Wait()
	commit() // the generation's last batches
}

// fetch reads one partition into queue until ctx ends.
func (c *BatchConsumer) fetch(ctx context.Context, log *slog.Logger, partition int, offset int64, st *partitionState, queue chan<- kafkago.Message) error {
	log = log.With("partition", partition)
	r := newPartitionReader(c.cfg.Config, c.dialer, c.cfg.Topic, partition, c.cfg.MaxWait, 0, log)
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(offset); err != nil {
		return fmt.Errorf("set offset %d: %w", offset, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("fetch failed", "err", err)
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return nil
			}
			continue
		}
		st.fetched(m)
		select {
		case queue <- m:
		case <-ctx.Done():
			return nil
		}
	}
}

// handleLoop takes batches from queue and hands each to h until it
// succeeds or ctx ends.
func (c *BatchConsumer) handleLoop(ctx context.Context, log *slog.Logger, queue <-chan kafkago.Message, parts map[int]*partitionState, h BatchHandler) {
	batch := make([]kafkago.Message, 0, c.cfg.MaxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for ctx.Err() == nil {
		batch = batch[:0]
		select {
		case m := <-queue:
			batch = append(batch, m)
		case <-ctx.Done():
			return
		}
		if c.cfg.Linger > 0 {
			linger.Reset(c.cfg.Linger)
		}
	fill:
		for len(batch) < c.cfg.MaxBatch {
			if c.cfg.Linger < 0 {
				select {
				case m := <-queue:
					batch = append(batch, m)
				default:
					break fill
				}
				continue
			}
			select {
			case m := <-queue:
				batch = append(batch, m)
			case <-linger.C:
				break fill
			case <-ctx.Done():
				return
			}
		}
		linger.Stop()
		if !c.handle(ctx, log, batch, h) {
			return // abandoned: handed to whoever gets the partitions next
		}
		handled(batch, parts)
	}
}

// handle hands batch to h until h succeeds (true) or the generation ends
// (false).
//
// A batch handed over is let finish when the generation ends (shutdown or
// a rebalance): h's context stays live for up to drainTimeout more, and a
// success within it counts, so the last commit covers it. Cancelling it
// instead would abandon work that usually commits a moment later (a
// projector's transaction), and every such batch would be delivered again
// after the restart. A failure once the generation has ended is not
// retried.
func (c *BatchConsumer) handle(ctx context.Context, log *slog.Logger, batch []kafkago.Message, h BatchHandler) bool {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(ctx, func() {
		t := time.AfterFunc(drainTimeout, cancel)
		<-hctx.Done()
		t.Stop()
	})()
	for wait := c.cfg.RetryInitial; ; wait = min(wait*2, c.cfg.RetryMax) {
		err := h(hctx, batch)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn("batch handler failed; handing the batch over again", "messages", len(batch), "retry_in", wait, "err", err)
		if !sleepCtx(ctx, wait) {
			return false
		}
	}
}

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
