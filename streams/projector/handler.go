package projector

import (
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
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

// dlqCounter wraps the dead-letter publisher so that every event a
// projection gives up on raises projection_dlq_total: nothing is skipped
// silently.
type dlqCounter struct {
	message.Publisher
	dlq *prometheus.CounterVec
}

func newDLQCounter(next message.Publisher, reg prometheus.Registerer) (dlqCounter, error) {
	dlq := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "projection_dlq_total", Help: "Events dead-lettered after bounded retries.",
	}, []string{"projection"})
	if reg != nil {
		if err := reg.Register(dlq); err != nil {
			return dlqCounter{}, err
		}
	}
	return dlqCounter{Publisher: next, dlq: dlq}, nil
}

func (d dlqCounter) Publish(topic string, msgs ...*message.Message) error {
	if err := d.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	for _, m := range msgs {
		if h := m.Metadata.Get(handlerPoisoned); h != "" {
			d.dlq.WithLabelValues(h).Inc()
		}
	}
	return nil
}
