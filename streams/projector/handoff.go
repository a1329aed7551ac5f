package projector

import (
	"context"
	"errors"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// errNacked says the router could not settle an event alone: the
// dead-letter publish failed. The batch is handed over again.
var errNacked = errors.New("event retried alone was nacked (dead-letter publish failed)")

// handoff is a watermill Subscriber fed by a batch handler, one message at
// a time: it is how an event that a batch could not apply reaches the
// Router, to run alone through the project's middleware (correlation,
// poison queue, retry, recoverer) exactly as every event did before
// batching. The Router sets the handler's name and the topic on the
// message's context, which the poison queue records and
// projection_dlq_total is labelled with.
//
// The queue is one message deep: deliver blocks until the Router has taken
// the message and acked or nacked it, so a batch handler retries its events
// one after the other, in batch order.
type handoff struct {
	in        chan *message.Message // unbuffered; never closed (deliver may be sending)
	done      chan struct{}         // closed by Close
	closeOnce sync.Once
}

func newHandoff() *handoff {
	return &handoff{in: make(chan *message.Message), done: make(chan struct{})}
}

// Subscribe implements message.Subscriber. The Router calls it once; the
// channel closes when ctx ends or on Close, which ends the Router's
// handler.
func (h *handoff) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-h.in:
				select {
				case out <- m:
				case <-ctx.Done():
					m.Nack()
					return
				case <-h.done:
					m.Nack()
					return
				}
			case <-ctx.Done():
				return
			case <-h.done:
				return
			}
		}
	}()
	return out, nil
}

// Close implements message.Subscriber.
func (h *handoff) Close() error {
	h.closeOnce.Do(func() { close(h.done) })
	return nil
}

// deliver hands msg to the Router and waits until it is settled: nil once
// acked (applied, or dead-lettered), errNacked, or ctx's error.
func (h *handoff) deliver(ctx context.Context, msg *message.Message) error {
	msg.SetContext(ctx)
	select {
	case h.in <- msg:
	case <-ctx.Done():
		return ctx.Err()
	case <-h.done:
		return errors.New("projector stopping")
	}
	select {
	case <-msg.Acked():
		return nil
	case <-msg.Nacked():
		return errNacked
	case <-ctx.Done():
		return ctx.Err()
	}
}
