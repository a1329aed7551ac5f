package projector

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/kafka"
)

// consumer feeds one projection from its consumer group, batch by batch.
type consumer struct {
	p      projections.Projection
	rt     *projections.Runtime
	kafka  *kafka.BatchConsumer
	alone  *handoff // to the Router, for events retried one at a time
	log    *slog.Logger
	tracer trace.Tracer
	ds     []projections.Delivery // the batch's decoded events, reused
	source []int                  // ds[i] is msgs[source[i]]

	verifier        *envelope.Verifier
	refusals        *envelope.Refusals
	dlq             message.Publisher // the dead-letter topic's (refusals are not projection_dlq_total's: nothing was given up)
	topic, dlqTopic string
	refused         []refusal // the batch's refused messages, reused
}

// refusal is a message of the batch the verifier refused.
type refusal struct {
	index int // into msgs
	err   error
}

// handle is the kafka.BatchHandler: refuse what the relay did not sign,
// apply the rest in one transaction, then retry alone, through the Router,
// whatever the batch could not apply. It returns nil once every message is
// applied, skipped as already applied, or dead-lettered; an error has the
// consumer hand the batch over again (the version check skips what was
// applied).
func (c *consumer) handle(ctx context.Context, msgs []kafkago.Message) error {
	c.ds, c.source, c.refused = c.ds[:0], c.source[:0], c.refused[:0]
	var alone []int // indexes into msgs
	for i, m := range msgs {
		if err := c.verifier.Verify(m); err != nil {
			// Before anything reads it: a refused message never reaches
			// the version check, so a forged "next version" cannot make
			// the real one look like a redelivery.
			c.refused = append(c.refused, refusal{i, err})
			continue
		}
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
	ctx, span := c.batchSpan(ctx)
	defer span.End()
	rejected, err := c.apply(ctx)
	if err != nil {
		span.SetStatus(codes.Error, "batch failed")
	}
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
		c.log.WarnContext(ctx, "projector: batch failed; applying its events one at a time", "events", len(msgs), "err", err)
		alone = alone[:0]
		next := 0 // into c.refused, ascending like i
		for i := range msgs {
			if next < len(c.refused) && c.refused[next].index == i {
				next++
				continue
			}
			alone = append(alone, i)
		}
	}
	for _, r := range c.refused {
		if err := c.deadLetter(ctx, msgs[r.index], r.err); err != nil {
			return err
		}
	}
	for _, i := range alone {
		if err := c.alone.deliver(ctx, c.kafka.Message(msgs[i])); err != nil {
			return err
		}
	}
	return nil
}

// deadLetter publishes a refused message to the dead-letter topic as it
// came (key, value, headers, and where it was in Kafka), with the reason
// in reason_poisoned as the Router's poison queue writes it, and counts it.
// No retries: a forgery does not get better. A failed publish fails the
// batch, which is handed over again (and the message refused again).
func (c *consumer) deadLetter(ctx context.Context, km kafkago.Message, refusal error) error {
	msg := c.kafka.Message(km)
	msg.Metadata.Set(middleware.ReasonForPoisonedKey, refusal.Error())
	msg.Metadata.Set(middleware.PoisonedTopicKey, c.topic)
	msg.Metadata.Set(middleware.PoisonedHandlerKey, c.p.Name())
	msg.SetContext(ctx)
	if err := c.dlq.Publish(c.dlqTopic, msg); err != nil {
		return fmt.Errorf("dead-letter a refused message (partition %d offset %d): %w", km.Partition, km.Offset, err)
	}
	c.refusals.Add(refusal, "kafka_partition", km.Partition, "kafka_offset", km.Offset, "dead_lettered_to", c.dlqTopic)
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
