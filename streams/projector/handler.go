package projector

import (
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/kafka"
)

// handler adapts a projection to a watermill handler: the message value is
// the public event envelope. A malformed envelope or a failing apply returns
// an error: the router retries it and finally dead-letters it.
func handler(rt *projections.Runtime, p projections.Projection) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		ev, err := eventstore.UnmarshalEnvelope(msg.Payload)
		if err != nil {
			return err
		}
		partition, err := strconv.Atoi(msg.Metadata.Get(kafka.MetadataPartition))
		if err != nil {
			return fmt.Errorf("message without a %s: %w", kafka.MetadataPartition, err)
		}
		return rt.Handle(msg.Context(), p, partition, ev)
	}
}

// handlerPoisoned is the metadata key watermill's poison queue sets to the
// name of the handler that gave up; projection handlers are named after
// their projection.
const handlerPoisoned = "handler_poisoned"

// parker is the poison queue's publisher: an event a projection gives up
// on is parked in projection_dead_letters (projections.Runtime.Park), with
// the poison queue's reason, which parks its order's later events too; and
// projection_dlq_total counts it: nothing is skipped silently. A failed
// park fails the publish: the event is nacked and its batch handed over
// again.
type parker struct {
	rt          *projections.Runtime
	projections map[string]projections.Projection // by handler name
	dlq         *prometheus.CounterVec
}

func newParker(rt *projections.Runtime, ps []projections.Projection, reg prometheus.Registerer) (*parker, error) {
	dlq := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "projection_dlq_total", Help: "Events a projection gave up on after bounded retries, parked as dead letters.",
	}, []string{"projection"})
	if reg != nil {
		if err := reg.Register(dlq); err != nil {
			return nil, err
		}
	}
	byName := map[string]projections.Projection{}
	for _, p := range ps {
		byName[p.Name()] = p
	}
	return &parker{rt: rt, projections: byName, dlq: dlq}, nil
}

// Publish implements message.Publisher; the topic is the Router's
// dead-letter topic, unused: dead letters of projections live in the table.
func (k *parker) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		p, ok := k.projections[m.Metadata.Get(handlerPoisoned)]
		if !ok {
			return fmt.Errorf("dead letter from an unknown handler %q", m.Metadata.Get(handlerPoisoned))
		}
		if err := k.rt.Park(m.Context(), p, m.Payload, m.Metadata.Get(middleware.ReasonForPoisonedKey)); err != nil {
			return err
		}
		k.dlq.WithLabelValues(p.Name()).Inc()
	}
	return nil
}

// Close implements message.Publisher.
func (k *parker) Close() error { return nil }
