package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"
)

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
