package hub

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/gorilla/websocket"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/streams/kafka"
)

// The live path: Kafka messages in, sequenced by global position, fanned out
// to every subscription of every channel they belong to.

func (h *Hub) ingest(ctx context.Context, msgs <-chan *message.Message, seq *sequencer) error {
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	var gapC <-chan time.Time // non-nil while the grace timer runs
	poll := time.NewTicker(h.cfg.PollInterval)
	defer poll.Stop()
	lastMsg := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("hub: Kafka subscription ended")
			}
			m.Ack()
			lastMsg = time.Now()
			if err := h.cfg.Verifier.VerifyMessage(m, kafka.DefaultKeyMetadata); err != nil {
				// Before the sequencer sees it: a forged position must
				// not move the global order (or stall it).
				h.refused.Add(err, "kafka_partition", m.Metadata.Get(kafka.MetadataPartition),
					"kafka_offset", m.Metadata.Get(kafka.MetadataOffset))
				continue
			}
			e, err := eventstore.UnmarshalEnvelope(m.Payload)
			if err != nil {
				h.m.badMessages.Inc()
				h.log.Warn("skipping a Kafka message that is not an event envelope", "uuid", m.UUID, "err", err)
				continue
			}
			seq.push(e)
			if seq.pending() >= h.cfg.MaxPending {
				h.retry(ctx, "fill a full sequencer", seq.fillGap)
			}
		case <-gapC:
			gapC = nil
			h.retry(ctx, "fill a position gap", seq.fillGap)
		case <-poll.C:
			if time.Since(lastMsg) < h.cfg.PollInterval || seq.waiting() {
				continue
			}
			h.retry(ctx, "catch up with the store", func(ctx context.Context) error {
				head, err := h.cfg.Store.HeadPosition(ctx)
				if err != nil || head <= seq.last {
					return err
				}
				return seq.fill(ctx, head)
			})
		}
		switch {
		case seq.waiting() && gapC == nil:
			gap.Reset(h.cfg.GapGrace)
			gapC = gap.C
		case !seq.waiting() && gapC != nil:
			gap.Stop()
			gapC = nil
		}
	}
}

// retry runs fn until it succeeds or ctx ends, backing off. The ingest
// goroutine waits meanwhile: global order cannot advance past a gap the
// store cannot explain, and Kafka keeps what is not taken.
func (h *Hub) retry(ctx context.Context, what string, fn func(context.Context) error) {
	wait := 50 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		h.log.Error("hub: store read failed; retrying", "what", what, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// dispatch fans one event out; the sequencer calls it in position order.
func (h *Hub) dispatch(ctx context.Context, e eventstore.RecordedEvent) {
	h.cust.observe(e)
	e = h.open(ctx, e)
	customer, looked := "", false
	for {
		// The look-up may read the store, so it runs without Hub.mu; a
		// customer subscription registered meanwhile (customerSubs
		// changes only under Hub.mu) sends us round again.
		if !looked && h.customerSubs.Load() > 0 {
			h.retry(ctx, "look up a customer", func(ctx context.Context) (err error) {
				customer, err = h.cust.of(ctx, h.cfg.Store, e)
				return err
			})
			looked = true
		}
		h.mu.Lock()
		if looked || h.customerSubs.Load() == 0 {
			break
		}
		h.mu.Unlock()
	}
	h.head = e.Position
	h.fanoutLocked(chanAll, e)
	h.fanoutLocked(prefixOrder+e.StreamID.String(), e)
	if customer != "" {
		h.fanoutLocked(prefixCustomer+customer, e)
	}
	h.mu.Unlock()
	h.m.head.Set(float64(e.Position))
}

// fanoutLocked queues e on every subscription of one channel, encoding it
// once for all of them. Never blocks.
func (h *Hub) fanoutLocked(name string, e eventstore.RecordedEvent) {
	ch := h.channels[name]
	if ch == nil {
		return
	}
	pos := position(ch.cn.kind, e)
	var pm *websocket.PreparedMessage
	for sub := range ch.subs {
		if sub.recovering {
			if len(sub.pending) >= max(h.cfg.SendQueue/2, 1) {
				h.slow(sub.c)
				continue
			}
			if pm == nil {
				pm = eventMessage(ch.cn, e)
			}
			sub.pending = append(sub.pending, pendingFrame{pos, pm})
			continue
		}
		if pos <= sub.last {
			continue
		}
		if pm == nil {
			pm = eventMessage(ch.cn, e)
		}
		sub.last = pos
		if !sub.c.enqueue(pm) {
			h.slow(sub.c)
		}
	}
}

func (h *Hub) slow(c *conn) {
	if c.kill(CloseSlowConsumer, ReasonSlowConsumer) {
		h.m.slowDisconnect.Inc()
	}
}

// open returns e with its personal data opened for the frames: plaintext,
// or order.Erased where the customer's key is gone. A value that cannot be
// opened now (the database unreachable, a tampered value) stays sealed in
// the frame rather than hold up every channel; the error is logged without
// the data.
func (h *Hub) open(ctx context.Context, e eventstore.RecordedEvent) eventstore.RecordedEvent {
	if h.cfg.Keys == nil {
		return e
	}
	data, err := h.cfg.Keys.OpenJSON(ctx, e.StreamID, e.Data)
	if err != nil {
		h.log.Error("hub: personal data not opened; the frame carries it sealed", "order", e.StreamID.String(), "version", e.Version, "err", err)
		return e
	}
	e.Data = data
	return e
}
