package hub_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/streams/hub"
)

// expected is the sequence of positions a channel must carry: the store's
// events, filtered, in position order (versions on order channels).
func expected(all []eventstore.RecordedEvent, channel string, customerOf map[ulid.ULID]string) []int64 {
	var out []int64
	for _, e := range all {
		switch {
		case channel == "orders":
			out = append(out, e.Position)
		case channel == "order:"+e.StreamID.String():
			out = append(out, e.Version)
		case channel == "customer:"+customerOf[e.StreamID]:
			out = append(out, e.Position)
		}
	}
	return out
}

func positions(fs []frame) []int64 {
	out := make([]int64, len(fs))
	for i, f := range fs {
		out[i] = f.Position
	}
	return out
}

// checkSequence fails unless got is exactly want (after the channel's start
// position): ascending, gap-free, no duplicate.
func checkSequence(t *testing.T, who, channel string, got, want []int64) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Errorf("%s %s: position %d after %d (index %d): not ascending / duplicate", who, channel, got[i], got[i-1], i)
			return
		}
	}
	t.Errorf("%s %s: got %d positions, want %d\n got  %v\n want %v", who, channel, len(got), len(want), got, want)
}

// TestFiftySubscribersGetEveryEventInOrderAndResumeWithoutSeam: 50
// subscribers over 100 orders while 2 000 events are appended concurrently
// and flow through the real relay and kfake; ten of them disconnect mid-way
// and resume with since.
func TestFiftySubscribersGetEveryEventInOrderAndResumeWithoutSeam(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, nil)

	const nOrders, perOrder, nSubs, nCustomers = 100, 20, 50, 10
	orders := newOrders(nOrders)
	customerOf := map[ulid.ULID]string{}
	custName := func(i int) string { return fmt.Sprintf("c%d", i%nCustomers) }
	for i, o := range orders {
		customerOf[o] = custName(i)
	}

	type subscriber struct {
		channels []string
		first    *client
		second   *client // after the mid-stream reconnect
		resume   bool
	}
	subs := make([]*subscriber, nSubs)
	for i := range subs {
		s := &subscriber{resume: i%5 == 1}
		s.channels = []string{"order:" + orders[2*i].String(), "order:" + orders[2*i+1].String()}
		if i%5 == 0 || i%5 == 1 {
			s.channels = append(s.channels, "orders")
		}
		if i%2 == 0 || i%5 == 1 {
			s.channels = append(s.channels, "customer:"+custName(i))
		}
		s.first = mustDial(t, th.url)
		for _, ch := range s.channels {
			s.first.subscribe(ch)
		}
		subs[i] = s
	}
	for _, s := range subs {
		s.first.waitSubscribed(time.Minute, s.channels...)
		for _, ch := range s.channels {
			if f := s.first.subscribed[ch]; f.Position != 0 || f.Recovered {
				t.Fatalf("%s: subscribed %+v before any event, want position 0, recovered false", ch, f)
			}
		}
	}

	var appended atomic.Int64
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		appendLoad(t, e.store, orders, custName, 1, perOrder, 10, 0,
			func(ulid.ULID, eventstore.AppendResult, time.Time) { appended.Add(1) })
	}()

	// Mid-stream: the resuming subscribers drop their connection once they
	// hold some events, and come back with their last positions.
	var wg sync.WaitGroup
	for i, s := range subs {
		if !s.resume {
			continue
		}
		wg.Go(func() {
			s.first.waitUntil(time.Minute, "some events", func(c *client) bool { return len(c.events["orders"]) >= 300+20*i })
			_ = s.first.ws.Close() // abrupt: no close frame
			<-s.first.done
			time.Sleep(50 * time.Millisecond) // let events pass meanwhile
			c, err := dial(t, th.url)
			if err != nil {
				t.Error(err)
				return
			}
			go c.readLoop()
			for _, ch := range s.channels {
				evs := s.first.eventsOf(ch)
				since := int64(0)
				if len(evs) > 0 {
					since = evs[len(evs)-1].Position
				}
				c.subscribe(ch, since)
			}
			s.second = c
		})
	}
	wg.Wait()
	select {
	case <-loadDone:
	case <-time.After(2 * time.Minute):
		t.Fatal("appends did not finish")
	}
	if t.Failed() {
		return
	}
	all := allEvents(t, e.store)
	if len(all) != nOrders*perOrder {
		t.Fatalf("store has %d events, want %d", len(all), nOrders*perOrder)
	}
	for i, s := range subs {
		last := s.first
		if s.second != nil {
			last = s.second
		}
		for _, ch := range s.channels {
			want := expected(all, ch, customerOf)
			last.waitUntil(time.Minute, fmt.Sprintf("subscriber %d: all of %s", i, ch), func(c *client) bool {
				evs := c.events[ch]
				return len(evs) > 0 && evs[len(evs)-1].Position == want[len(want)-1]
			})
			got := positions(s.first.eventsOf(ch))
			if s.second != nil {
				sf := s.second.subscribed[ch]
				if !sf.Recovered {
					t.Errorf("subscriber %d %s: resumed subscription not recovered: %+v", i, ch, sf)
				}
				got = append(got, positions(s.second.eventsOf(ch))...)
			}
			checkSequence(t, fmt.Sprintf("subscriber %d", i), ch, got, want)
			// Per order, versions ascend on every channel.
			seen := map[string]int64{}
			for _, f := range append(s.first.eventsOf(ch), eventsOrNil(s.second, ch)...) {
				if f.Version != seen[f.StreamID]+1 {
					t.Errorf("subscriber %d %s: order %s version %d after %d", i, ch, f.StreamID, f.Version, seen[f.StreamID])
				}
				seen[f.StreamID] = f.Version
			}
		}
	}
	if n := th.metric("hub_recoveries_total", "recovered", "true"); n < 1 {
		t.Errorf("hub_recoveries_total{recovered=true} = %v", n)
	}
	t.Logf("sequencer store fills: %v (%v events); frames sent %v",
		th.metric("hub_sequencer_store_fills_total"), th.metric("hub_sequencer_filled_events_total"), th.metric("hub_frames_sent_total"))
}

func eventsOrNil(c *client, ch string) []frame {
	if c == nil {
		return nil
	}
	return c.eventsOf(ch)
}

// TestResumeTooOldGivesRecoveredFalseAndContinuesLive: a since further
// back than the recovery window is not replayed; the client is told to
// reload, and live events follow. Order channels recover from any version.
func TestResumeTooOldGivesRecoveredFalseAndContinuesLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, func(c *hub.Config) { c.RecoveryWindow = 50 })
	orders := newOrders(10)
	cust := func(int) string { return "c" }
	appendLoad(t, e.store, orders, cust, 1, 10, 2, 0, nil) // 100 events, head 100
	head, _ := e.store.HeadPosition(t.Context())
	c := mustDial(t, th.url)
	c.waitUntil(time.Minute, "nothing", func(*client) bool { return true })
	// The hub catches up with the store by polling; wait for it.
	deadline := time.Now().Add(time.Minute)
	for th.metric("hub_head_position") < float64(head) {
		if time.Now().After(deadline) {
			t.Fatalf("hub head %v, store head %d", th.metric("hub_head_position"), head)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.subscribe("orders", 10)                          // 90 behind: too old
	c.subscribe("customer:c", head-5)                  // 5 behind: recovered
	c.subscribe("order:"+orders[3].String(), int64(2)) // versions 3..10
	c.waitSubscribed(time.Minute, "orders", "customer:c", "order:"+orders[3].String())
	if f := c.subscribed["orders"]; f.Recovered || f.Position != head {
		t.Errorf("orders: %+v, want recovered false at %d", f, head)
	}
	if f := c.subscribed["customer:c"]; !f.Recovered || f.Position != head {
		t.Errorf("customer:c: %+v, want recovered true at %d", f, head)
	}
	if got := positions(c.eventsOf("customer:c")); !slices.Equal(got, []int64{head - 4, head - 3, head - 2, head - 1, head}) {
		t.Errorf("customer:c history %v", got)
	}
	if got := positions(c.eventsOf("order:" + orders[3].String())); !slices.Equal(got, []int64{3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Errorf("order history %v", got)
	}
	if f := c.subscribed["order:"+orders[3].String()]; !f.Recovered || f.Position != 10 {
		t.Errorf("order channel: %+v", f)
	}
	if n := len(c.eventsOf("orders")); n != 0 {
		t.Errorf("orders replayed %d events though too old", n)
	}
	appendLoad(t, e.store, orders[3:4], cust, 11, 1, 1, 0, nil)
	c.waitUntil(time.Minute, "the live event", func(c *client) bool { return len(c.events["orders"]) == 1 })
	if f := c.eventsOf("orders")[0]; f.Position != head+1 {
		t.Errorf("live event at %d, want %d", f.Position, head+1)
	}
	c.waitUntil(time.Minute, "the live order event", func(c *client) bool { return len(c.events["order:"+orders[3].String()]) == 9 })
	if n := th.metric("hub_recoveries_total", "recovered", "false"); n != 1 {
		t.Errorf("hub_recoveries_total{recovered=false} = %v", n)
	}
}
