package hub_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/streams/hub"
)

// recoveryStore is the hub's RecoveryStore in these tests: it counts the
// reads of subscribes and, while gate is closed (non-nil and unsignalled),
// holds every ReadAll, recording how many were in flight at once.
type recoveryStore struct {
	hub.Store
	streamVersions, readStreams, readAlls atomic.Int64
	inFlight, maxInFlight                 atomic.Int64
	gate                                  chan struct{}
}

func (s *recoveryStore) StreamVersion(ctx context.Context, st eventstore.Stream) (int64, error) {
	s.streamVersions.Add(1)
	return s.Store.StreamVersion(ctx, st)
}

func (s *recoveryStore) ReadStream(ctx context.Context, st eventstore.Stream, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	s.readStreams.Add(1)
	return s.Store.ReadStream(ctx, st, from, limit)
}

func (s *recoveryStore) ReadAll(ctx context.Context, after int64, limit int) ([]eventstore.RecordedEvent, error) {
	s.readAlls.Add(1)
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.maxInFlight.Load(); n > m && !s.maxInFlight.CompareAndSwap(m, n); m = s.maxInFlight.Load() {
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.ReadAll(ctx, after, limit)
}

func withClient(key string) dialOpt {
	return func(_ *websocket.Dialer, h http.Header) { h.Set("X-Test-Client", key) }
}

func TestConnectionCapsCloseWith1013And4029(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, func(c *hub.Config) {
		c.MaxConnections = 3
		c.MaxConnectionsPerClient = 2
		c.ClientKey = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
	})
	a1 := mustDial(t, th.url, withClient("a"))
	mustDial(t, th.url, withClient("a"))
	waitFor(t, time.Minute, "two connections", func() bool { return th.metric("hub_connections") == 2 })

	a3 := mustDial(t, th.url, withClient("a"))
	if code, reason := closeCode(a3.waitClosed(time.Minute)); code != hub.CloseTooManyConnections || reason != hub.ReasonTooManyConnections {
		t.Errorf("a third connection of one client closed with %d %q, want 4029", code, reason)
	}
	b1 := mustDial(t, th.url, withClient("b"))
	waitFor(t, time.Minute, "three connections", func() bool { return th.metric("hub_connections") == 3 })
	c1 := mustDial(t, th.url, withClient("c"))
	if code, reason := closeCode(c1.waitClosed(time.Minute)); code != hub.CloseTryAgainLater || reason != hub.ReasonNodeFull {
		t.Errorf("a fourth connection on the node closed with %d %q, want 1013", code, reason)
	}
	if th.metric("hub_refused_connections_total", "limit", "client") != 1 || th.metric("hub_refused_connections_total", "limit", "node") != 1 {
		t.Errorf("refusals counted: client %v, node %v", th.metric("hub_refused_connections_total", "limit", "client"),
			th.metric("hub_refused_connections_total", "limit", "node"))
	}
	// The connections that were let in work, and a closed one frees its
	// client's slot and the node's.
	b1.subscribe("orders")
	b1.waitSubscribed(time.Minute, "orders")
	_ = a1.ws.Close()
	waitFor(t, time.Minute, "a's first connection to be gone", func() bool { return th.metric("hub_connections") == 2 })
	a4 := mustDial(t, th.url, withClient("a"))
	a4.subscribe("orders")
	a4.waitSubscribed(time.Minute, "orders")
}

func TestSubscribeRateLimitAnswersRateLimitedThenClosesWith1008(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, func(c *hub.Config) {
		c.SubscribeRate = 0.001 // a token in 17 minutes: none comes back during the test
		c.SubscribeBurst = 2
		c.MaxBadFrames = 4
	})
	c := mustDial(t, th.url)
	c.subscribe("orders")
	c.waitSubscribed(time.Minute, "orders")
	c.send(map[string]any{"type": "unsubscribe", "channel": "orders"})
	c.subscribe("customer:c1")
	c.waitSubscribed(time.Minute, "customer:c1")
	c.subscribe("orders") // the burst is spent
	c.waitUntil(time.Minute, "rate_limited", func(c *client) bool { return len(c.errs) == 1 })
	if f := c.errs[0]; f.Code != hub.CodeRateLimited || f.Channel != "orders" || f.Message == "" {
		t.Errorf("error %+v, want rate_limited on orders", f)
	}
	// A client that keeps looping is a bad client: each refusal is a bad
	// frame, and MaxBadFrames of them close the connection.
	for range 3 {
		c.subscribe("orders")
	}
	if code, reason := closeCode(c.waitClosed(time.Minute)); code != websocket.ClosePolicyViolation || reason != hub.ReasonPolicy {
		t.Errorf("closed with %d %q, want 1008 %q", code, reason, hub.ReasonPolicy)
	}
	if n := th.metric("hub_subscribes_rate_limited_total"); n != 4 {
		t.Errorf("hub_subscribes_rate_limited_total = %v, want 4", n)
	}
}

// TestOrderChannelIsAnsweredFromTheStreamVersion: subscribe to order:<id>
// without since costs one version probe, never a read of the stream; with
// since, only the missed versions are read, and a since further back than
// RecoveryWindow gets recovered:false without a read.
func TestOrderChannelIsAnsweredFromTheStreamVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rs := &recoveryStore{Store: e.store}
	th := e.startHub(t, func(c *hub.Config) {
		c.RecoveryStore = rs
		c.RecoveryWindow = 10
	})
	orders := newOrders(1)
	appendLoad(t, e.store, orders, func(int) string { return "c" }, 1, 30, 1, 0, nil)
	ch := "order:" + orders[0].String()
	// Recovery replays up to the hub's head: let it reach the store's, or a
	// busy machine hands the last versions over live instead.
	head, _ := e.store.HeadPosition(t.Context())
	waitFor(t, time.Minute, "the hub to catch up", func() bool { return th.metric("hub_head_position") >= float64(head) })

	c := mustDial(t, th.url)
	c.subscribe(ch)
	c.waitSubscribed(time.Minute, ch)
	if f := c.subscribed[ch]; f.Recovered || f.Position != 30 {
		t.Errorf("without since: %+v, want position 30, recovered false", f)
	}
	if rs.streamVersions.Load() != 1 || rs.readStreams.Load() != 0 || len(c.eventsOf(ch)) != 0 {
		t.Errorf("without since: %d version probes, %d stream reads, %d events; want 1, 0, 0",
			rs.streamVersions.Load(), rs.readStreams.Load(), len(c.eventsOf(ch)))
	}

	far := mustDial(t, th.url)
	far.subscribe(ch, 5) // 25 behind, the window is 10
	far.waitSubscribed(time.Minute, ch)
	if f := far.subscribed[ch]; f.Recovered || f.Position != 30 || len(far.eventsOf(ch)) != 0 || rs.readStreams.Load() != 0 {
		t.Errorf("since beyond the window: %+v, %d events, %d stream reads", f, len(far.eventsOf(ch)), rs.readStreams.Load())
	}

	near := mustDial(t, th.url)
	near.subscribe(ch, 25)
	near.waitSubscribed(time.Minute, ch)
	if got := positions(near.eventsOf(ch)); len(got) != 5 || got[0] != 26 || got[4] != 30 || !near.subscribed[ch].Recovered {
		t.Errorf("since 25: events %v, %+v", got, near.subscribed[ch])
	}
	// Live events continue on every one of them.
	appendLoad(t, e.store, orders, func(int) string { return "c" }, 31, 1, 1, 0, nil)
	for _, cl := range []*client{c, far, near} {
		cl.waitUntil(time.Minute, "version 31", func(cl *client) bool {
			evs := cl.events[ch]
			return len(evs) > 0 && evs[len(evs)-1].Position == 31
		})
	}
}

// TestRecoveriesAreBoundedAndNeverHoldUpLiveDelivery: with one recovery
// slot and the recovery store's reads held, two replaying subscribes wait
// one behind the other, while a live subscriber on the same hub keeps
// getting new events (the live path reads the main store).
func TestRecoveriesAreBoundedAndNeverHoldUpLiveDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rs := &recoveryStore{Store: e.store, gate: make(chan struct{})}
	th := e.startHub(t, func(c *hub.Config) {
		c.RecoveryStore = rs
		c.MaxRecoveries = 1
	})
	orders := newOrders(5)
	cust := func(int) string { return "c" }
	appendLoad(t, e.store, orders, cust, 1, 4, 1, 0, nil) // head 20
	head, _ := e.store.HeadPosition(t.Context())
	waitFor(t, time.Minute, "the hub to reach the head", func() bool { return th.metric("hub_head_position") >= float64(head) })

	live := mustDial(t, th.url)
	live.subscribe("orders")
	live.waitSubscribed(time.Minute, "orders")
	r1, r2 := mustDial(t, th.url), mustDial(t, th.url)
	r1.subscribe("orders", 3)
	r2.subscribe("orders", 5)
	waitFor(t, time.Minute, "a recovery read to start", func() bool { return rs.inFlight.Load() == 1 })

	appendLoad(t, e.store, orders, cust, 5, 1, 1, 0, nil) // 5 live events while recoveries are held
	live.waitUntil(time.Minute, "the live events", func(c *client) bool { return len(c.events["orders"]) == 5 })
	if n := rs.inFlight.Load(); n != 1 {
		t.Errorf("%d recovery reads in flight with one slot", n)
	}

	close(rs.gate)
	r1.waitSubscribed(time.Minute, "orders")
	r2.waitSubscribed(time.Minute, "orders")
	if rs.maxInFlight.Load() != 1 {
		t.Errorf("at most %d recovery reads were in flight, want 1", rs.maxInFlight.Load())
	}
	for _, r := range []struct {
		c     *client
		since int64
	}{{r1, 3}, {r2, 5}} {
		got := positions(r.c.eventsOf("orders"))
		want := head + 5 - r.since
		if int64(len(got)) < head-r.since || got[0] != r.since+1 {
			t.Errorf("since %d: got %v", r.since, got)
		}
		r.c.waitUntil(time.Minute, "every event", func(c *client) bool { return int64(len(c.events["orders"])) == want })
	}
}
