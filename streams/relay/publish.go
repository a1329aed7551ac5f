package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/streams/envelope"
)

// publish is the publisher goroutine. It runs while this relay is leader and
// returns when ctx (the leader context) ends, or when drain is closed and
// the write in flight, if any, is acknowledged and checkpointed.
func (r *Relay) publish(ctx context.Context, wake <-chan struct{}, drain <-chan struct{}) {
	tr, err := r.cfg.Kafka.Transport()
	if err != nil { // validated in New; kept for safety
		r.setError("kafka transport", err)
		return
	}
	defer tr.CloseIdleConnections()
	w := &kafkago.Writer{
		Addr:                   kafkago.TCP(r.cfg.Kafka.Brokers...),
		Topic:                  r.cfg.Topic,
		Balancer:               &kafkago.Hash{},    // same key → same partition
		RequiredAcks:           kafkago.RequireAll, // acked = on every in-sync replica
		Async:                  false,              // the checkpoint needs the outcome
		BatchSize:              r.cfg.BatchSize,    // ≥ messages per call: one batch per partition per call
		BatchBytes:             r.cfg.BatchBytes,   // ≥ bytes per call (see chunk)
		BatchTimeout:           time.Millisecond,   // a call's messages are all added before this can flush
		MaxAttempts:            3,                  // quick retries inside the writer; longer backoff is ours
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        500 * time.Millisecond,
		WriteTimeout:           r.cfg.WriteTimeout,
		ReadTimeout:            r.cfg.WriteTimeout,
		Transport:              tr,
		AllowAutoTopicCreation: false,
	}
	// Close waits for batches still in flight; with the broker unreachable
	// that is bounded by MaxAttempts × WriteTimeout.
	defer func() { _ = w.Close() }()

	bo := r.newBackoff()
	cp, ok := r.start(ctx, bo)
	if !ok {
		return
	}
	draining := func() bool {
		select {
		case <-drain:
			return true
		default:
			return false
		}
	}
	for ctx.Err() == nil && !draining() {
		evs, err := r.store.ReadAll(ctx, cp, r.cfg.BatchSize)
		if err != nil {
			if ctx.Err() == nil {
				r.setError("read events", err)
				sleep(ctx, bo.NextBackOff())
			}
			continue
		}
		if len(evs) == 0 {
			r.setProgress(cp, time.Time{})
			select {
			case <-wake:
			case <-drain:
			case <-ctx.Done():
			}
			continue
		}
		r.seeHead(evs[len(evs)-1].Position)
		for len(evs) > 0 && ctx.Err() == nil && !draining() {
			n, msgs, err := r.chunk(evs)
			if err != nil {
				// An event we cannot encode can never be published: stop
				// here, loudly, rather than skip it (nothing committed is
				// ever skipped).
				r.setError("encode event", err)
				sleep(ctx, r.cfg.MaxBackoff)
				break
			}
			if !r.write(ctx, w, msgs, evs[0].RecordedAt, bo) {
				return
			}
			last := evs[n-1].Position
			if !r.advance(ctx, last, bo) {
				return
			}
			cp, evs = last, evs[n:]
			oldest := time.Time{}
			if len(evs) > 0 {
				oldest = evs[0].RecordedAt
			}
			r.setProgress(cp, oldest)
			if r.cfg.OnCheckpoint != nil {
				r.cfg.OnCheckpoint(cp)
			}
		}
	}
}

// start loads the checkpoint and applies the fresh-topic rule (topic.go),
// retrying until both succeed or ctx ends.
func (r *Relay) start(ctx context.Context, bo backoff.BackOff) (int64, bool) {
	var cp int64
	for {
		var err error
		if cp, err = r.loadCheckpoint(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return 0, false
		}
		r.setError("load checkpoint", err)
		sleep(ctx, bo.NextBackOff())
	}
	for {
		fresh, err := r.ensureTopic(ctx, cp)
		if err == nil {
			r.setKafka(true, nil)
			if fresh && cp > 0 {
				if err = r.resetCheckpoint(ctx); err == nil {
					r.log.Warn("relay: topic is new or empty, republishing from the start of the store",
						"old_checkpoint", cp)
					r.countReset()
					cp = 0
				}
			}
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return 0, false
		}
		r.setKafka(false, fmt.Errorf("ensure topic: %w", err))
		sleep(ctx, bo.NextBackOff())
	}
	bo.Reset()
	r.setProgress(cp, time.Time{})
	return cp, true
}

// chunk encodes the longest prefix of evs that fits in BatchBytes (at least
// one event) and returns its length. Keeping a call within the writer's
// BatchBytes is what makes each partition's share one produce batch, which
// fails or succeeds as a whole (the ordering argument in relay.go).
func (r *Relay) chunk(evs []eventstore.RecordedEvent) (int, []kafkago.Message, error) {
	msgs := make([]kafkago.Message, 0, len(evs))
	var bytes int64
	for _, e := range evs {
		m, err := r.message(e)
		if err != nil {
			return 0, nil, err
		}
		size := messageSize(m)
		if len(msgs) > 0 && bytes+size > r.cfg.BatchBytes {
			break
		}
		bytes += size
		msgs = append(msgs, m)
	}
	return len(msgs), msgs, nil
}

// message is e as published: envelope.Message, signed unless the relay
// publishes unsigned (Config.Unsigned).
func (r *Relay) message(e eventstore.RecordedEvent) (kafkago.Message, error) {
	m, err := envelope.Message(e)
	if err != nil || r.cfg.Signer == nil {
		return m, err
	}
	if err := r.cfg.Signer.Sign(&m); err != nil {
		return kafkago.Message{}, fmt.Errorf("event %s: %w", e.ID, err)
	}
	return m, nil
}

// messageSize over-estimates kafka-go's own accounting (record framing is
// well under 64 bytes), so a chunk never overflows the writer's batch.
func messageSize(m kafkago.Message) int64 {
	n := 64 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 16 + len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// write sends msgs until Kafka acknowledged all of them, retrying only the
// failed ones, with capped exponential backoff. It returns false when ctx
// ended first.
func (r *Relay) write(ctx context.Context, w *kafkago.Writer, msgs []kafkago.Message, oldest time.Time, bo backoff.BackOff) bool {
	pending := msgs
	for {
		r.metrics.batchSize.Observe(float64(len(pending)))
		start := time.Now()
		err := w.WriteMessages(ctx, pending...)
		r.metrics.publishSeconds.Observe(time.Since(start).Seconds())
		if err == nil {
			r.addPublished(len(pending))
			r.setKafka(true, nil)
			bo.Reset()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.metrics.publishErrors.Inc()
		var werrs kafkago.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(pending) {
			// Each failed message's whole partition batch failed with it
			// (see chunk), so the survivors keep their relative order.
			failed := pending[:0:0]
			for i, e := range werrs {
				if e != nil {
					failed = append(failed, pending[i])
				}
			}
			r.addPublished(len(pending) - len(failed))
			pending = failed
			err = fmt.Errorf("%d of %d messages failed: %w", len(failed), len(werrs), firstError(werrs))
		}
		r.setKafka(false, err)
		if head, herr := r.store.HeadPosition(ctx); herr == nil {
			r.seeHead(head)
		}
		r.setProgress(r.Status().Checkpoint, oldest)
		if !sleep(ctx, bo.NextBackOff()) {
			return false
		}
	}
}

func firstError(werrs kafkago.WriteErrors) error {
	for _, e := range werrs {
		if e != nil {
			return e
		}
	}
	return nil
}

// advance stores the checkpoint, retrying on Postgres errors: the messages
// are acknowledged, so giving up here would only cause duplicates later.
func (r *Relay) advance(ctx context.Context, p int64, bo backoff.BackOff) bool {
	for {
		err := r.saveCheckpoint(ctx, p)
		if err == nil {
			bo.Reset()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.setError("save checkpoint", err)
		if !sleep(ctx, bo.NextBackOff()) {
			return false
		}
	}
}

func (r *Relay) newBackoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = r.cfg.MinBackoff
	b.MaxInterval = r.cfg.MaxBackoff // and never gives up (v5 has no elapsed-time limit): the relay must catch up when Kafka returns
	b.Reset()
	return b
}
