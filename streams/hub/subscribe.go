package hub

import (
	"errors"
	"fmt"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/auth"
)

// subscribe registers the subscription as recovering, replays what the
// client missed from the store, then turns it live (see DESIGN.md,
// "Recovery"). It runs in the connection's reader goroutine: a slow store
// read delays this connection only.
func (c *conn) subscribe(f clientFrame) {
	cn, err := parseChannel(f.Channel)
	if err != nil {
		c.fail(CodeBadChannel, err.Error(), f.Channel)
		return
	}
	if f.Since != nil && *f.Since < 0 {
		c.fail(CodeBadPosition, "since must be ≥ 0", f.Channel)
		return
	}
	if !c.authorize(cn) {
		return
	}
	sub, head, ok := c.register(cn)
	if !ok {
		return
	}
	pos, recovered, err := c.history(cn, f.Since, head)
	if err != nil {
		c.abandon(sub, err)
		return
	}
	if f.Since != nil {
		c.h.m.recoveries.WithLabelValues(fmt.Sprint(recovered)).Inc()
	}
	c.goLive(sub, pos, recovered)
}

// authorize checks the subscribe against the channels' rule table
// (internal/auth): the firehose is not for customers, customer:<id> is for
// that customer, order:<id> for its owner. A refusal is an error frame and
// counts as a bad frame, so guessing order ids ends in 1008; for a
// customer, another's order and one that does not exist both answer
// not_found.
func (c *conn) authorize(cn channelName) bool {
	kind, id := auth.ChannelOrders, ""
	switch cn.kind {
	case kindOrder:
		kind, id = auth.ChannelOrder, cn.order.String()
	case kindCustomer:
		kind, id = auth.ChannelCustomer, cn.name[len(prefixCustomer):]
	}
	err := auth.ChannelAccess(c.who, kind, id, func() (owner string, err error) {
		err = c.recoveryRead(func(s Store) (err error) {
			owner, err = c.h.cust.ofOrder(c.ctx, s, cn.order)
			return err
		})
		return owner, err
	})
	switch {
	case err == nil:
		return true
	case errors.Is(err, auth.ErrForbidden):
		c.fail(CodeForbidden, "your token's roles may not read this channel", cn.name)
	case errors.Is(err, auth.ErrNotFound):
		c.fail(CodeNotFound, "no such order among yours", cn.name)
	case c.ctx.Err() == nil:
		c.h.log.Warn("hub: order owner look-up failed", "channel", cn.logName(), "err", err)
		c.reply(errorMessage(CodeUnavailable, "could not read the event store; subscribe again", cn.name))
	}
	return false
}

// register adds a recovering subscription to cn and returns it with the
// head it recovers up to; ok is false when the client was told why not.
func (c *conn) register(cn channelName) (sub *subscription, head int64, ok bool) {
	h := c.h
	h.mu.Lock()
	if c.subs[cn.name] != nil {
		h.mu.Unlock()
		c.fail(CodeAlreadySubscribed, "already subscribed to this channel", cn.name)
		return nil, 0, false
	}
	if len(c.subs) >= h.cfg.MaxSubscriptions {
		h.mu.Unlock()
		c.fail(CodeTooManySubs, fmt.Sprintf("at most %d subscriptions per connection", h.cfg.MaxSubscriptions), cn.name)
		return nil, 0, false
	}
	ch := h.channels[cn.name]
	if ch == nil {
		ch = &channel{cn: cn, subs: make(map[*subscription]struct{})}
		h.channels[cn.name] = ch
	}
	sub = &subscription{c: c, ch: ch, recovering: true}
	ch.subs[sub] = struct{}{}
	c.subs[cn.name] = sub
	if cn.kind == kindCustomer { // under Hub.mu: dispatch re-checks it there
		h.customerSubs.Add(1)
	}
	head = h.head
	h.mu.Unlock()
	h.m.subscriptions.Inc()
	return sub, head, true
}

// abandon drops a subscription whose recovery failed and tells the client.
func (c *conn) abandon(sub *subscription, err error) {
	h := c.h
	h.mu.Lock()
	if c.subs[sub.ch.cn.name] == sub {
		h.removeSubLocked(sub)
	}
	h.mu.Unlock()
	if c.ctx.Err() == nil {
		h.log.Warn("hub: recovery failed", "channel", sub.ch.cn.logName(), "err", err)
		c.reply(errorMessage(CodeUnavailable, "could not read the event store; subscribe again", sub.ch.cn.name))
	}
}

// goLive queues subscribed{pos} and the live events buffered above pos, and
// turns the subscription live, all under Hub.mu so that no live event
// slips between them.
func (c *conn) goLive(sub *subscription, pos int64, recovered bool) {
	h := c.h
	// Leave room for subscribed + the live buffer (≤ SendQueue/2).
	if c.waitQueueAtMost(h.cfg.SendQueue/4) != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.subs[sub.ch.cn.name] != sub { // the connection closed meanwhile
		return
	}
	sub.last = pos
	ok := c.enqueue(subscribedMessage(sub.ch.cn.name, pos, recovered))
	for _, p := range sub.pending {
		if ok && p.pos > sub.last {
			sub.last = p.pos
			ok = c.enqueue(p.pm)
		}
	}
	sub.pending, sub.recovering = nil, false
	if !ok {
		h.slow(c)
	}
}

// history pushes the events of cn in (since, head] from the store and
// returns the position the subscription stands at and whether what the
// client missed was replayed.
func (c *conn) history(cn channelName, since *int64, head int64) (pos int64, recovered bool, err error) {
	if cn.kind == kindOrder {
		return c.orderHistory(cn, since, head)
	}
	return c.globalHistory(cn, since, head)
}

// orderHistory answers order:<id> from the stream's current version, one
// probe of the (stream_id, version) index: without since that is the whole
// answer (nothing is replayed, whatever the stream's length), and with
// since it bounds the replay, which is refused (recovered:false) beyond
// RecoveryWindow versions. Returning the current version v, which may
// count events above head, is exact: those events are in the live buffer,
// and goLive drops what is at or below v; every event after v commits
// after the probe, so above head, so into the buffer too.
func (c *conn) orderHistory(cn channelName, since *int64, head int64) (int64, bool, error) {
	stream := eventstore.Stream{ID: cn.order}
	var v int64
	if err := c.recoveryRead(func(s Store) (err error) {
		v, err = s.StreamVersion(c.ctx, stream)
		return err
	}); err != nil {
		return 0, false, err
	}
	switch {
	case since == nil:
		return v, false, nil
	case *since >= v:
		return *since, true, nil
	case v-*since > c.h.cfg.RecoveryWindow:
		return v, false, nil
	}
	last := *since
	for last < v {
		var evs []eventstore.RecordedEvent
		if err := c.recoveryRead(func(s Store) (err error) {
			evs, err = s.ReadStream(c.ctx, stream, last+1, int(min(v-last, fillPage)))
			return err
		}); err != nil {
			return 0, false, err
		}
		for _, e := range evs {
			if e.Position > head {
				return last, true, nil // live: it is or will be in the buffer
			}
			last = e.Version
			if err := c.pushHistory(eventMessage(cn, c.h.open(c.ctx, e))); err != nil {
				return 0, false, err
			}
		}
		if len(evs) == 0 {
			break
		}
	}
	return last, true, nil
}

// recoveryRead runs one store read of a subscribe on Config.RecoveryStore,
// holding one of the node's MaxRecoveries slots for that read only: never
// while the client drains what it returned, so a slow client holds no slot.
// Waiting for a slot blocks this connection's reader, nobody else.
func (c *conn) recoveryRead(read func(Store) error) error {
	select {
	case c.h.recoverySlots <- struct{}{}:
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
	defer func() { <-c.h.recoverySlots }()
	return read(c.h.cfg.RecoveryStore)
}

// globalHistory replays orders and customer:<id> (global positions) from
// since up to head, unless since is further back than RecoveryWindow.
func (c *conn) globalHistory(cn channelName, since *int64, head int64) (int64, bool, error) {
	h, ctx := c.h, c.ctx
	switch {
	case since == nil:
		return head, false, nil
	case *since >= head: // the client is as far as this node, or further (it came from a node ahead)
		return *since, true, nil
	case head-*since > h.cfg.RecoveryWindow:
		return head, false, nil
	}
	customer := ""
	if cn.kind == kindCustomer {
		customer = cn.name[len(prefixCustomer):]
	}
	for cursor := *since; cursor < head; {
		limit := int(min(head-cursor, fillPage))
		var evs []eventstore.RecordedEvent
		if err := c.recoveryRead(func(s Store) (err error) {
			evs, err = s.ReadAll(ctx, cursor, limit)
			return err
		}); err != nil {
			return 0, false, err
		}
		for _, e := range evs {
			if e.Position > head {
				return head, true, nil
			}
			cursor = e.Position
			if customer != "" {
				var cid string
				if err := c.recoveryRead(func(s Store) (err error) {
					cid, err = h.cust.of(ctx, s, e)
					return err
				}); err != nil {
					return 0, false, err
				}
				if cid != customer {
					continue
				}
			}
			if err := c.pushHistory(eventMessage(cn, c.h.open(c.ctx, e))); err != nil {
				return 0, false, err
			}
		}
		if len(evs) < limit {
			break
		}
	}
	return head, true, nil
}
