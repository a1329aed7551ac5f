package projector

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/kafka"
)

// consumer feeds one projection from its consumer group, batch by batch.
type consumer struct {
	p      projections.Projection
	rt     *projections.Runtime
	kafka  *kafka.BatchConsumer
	alone  *handoff // to the Router, for events retried one at a time
	log    *slog.Logger
	ds     []projections.Delivery // the batch's decoded events, reused
	source []int                  // ds[i] is msgs[source[i]]
}

// handle is the kafka.BatchHandler: apply the batch in one transaction,
// then retry alone, through the Router, whatever the batch could not apply.
// It returns nil once every message is applied, skipped as already applied,
// or dead-lettered; an error has the consumer hand the batch over again
// (the version check skips what was applied).
func (c *consumer) handle(ctx context.Context, msgs []kafkago.Message) error {
	c.ds, c.source = c.ds[:0], c.source[:0]
	var alone []int // indexes into msgs
	for i, m := range msgs {
		ev, err := eventstore.UnmarshalEnvelope(m.Value)
		if err != nil {
			// No order to apply it to: alone, it fails again and goes to
			// the dead-letter queue.
			alone = append(alone, i)
			continue
		}
		c.ds = append(c.ds, projections.Delivery{Event: ev, Partition: m.Partition})
		c.source = append(c.source, i)
	}
	rejected, err := c.apply(ctx)
	switch {
	case err == nil:
		for _, r := range rejected {
			alone = append(alone, c.source[r.Index])
		}
		slices.Sort(alone)
	case ctx.Err() != nil || projections.Transient(err):
		return err
	default:
		// Not the database's state, and not an event the batch could point
		// at: some event makes a statement fail (or the code panic). Alone,
		// only that one fails, and is dead-lettered.
		c.log.Warn("projector: batch failed; applying its events one at a time", "events", len(msgs), "err", err)
		alone = alone[:0]
		for i := range msgs {
			alone = append(alone, i)
		}
	}
	for _, i := range alone {
		if err := c.alone.deliver(ctx, c.kafka.Message(msgs[i])); err != nil {
			return err
		}
	}
	return nil
}

// apply is ApplyBatch with a panic turned into an error, so that the event
// that causes it is found by retrying alone (where the recoverer
// middleware catches it) instead of crashing the projector.
func (c *consumer) apply(ctx context.Context) (rejected []projections.Rejection, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("projection %s: panic applying a batch of %d events: %v", c.p.Name(), len(c.ds), v)
		}
	}()
	return c.rt.ApplyBatch(ctx, c.p, c.ds)
}
