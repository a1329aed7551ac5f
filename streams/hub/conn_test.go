package hub_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/benchstat"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/hub"
)

// fastReaders subscribes n readers to "orders" and records, per event, the
// time from Append's return to the frame's arrival.
func fastReaders(t *testing.T, url string, n int, appendedAt *sync.Map, rec *benchstat.Recorder) []*resumer {
	rs := make([]*resumer, n)
	for i := range rs {
		rs[i] = &resumer{t: t, url: url, onEvent: func(f frame) {
			if v, ok := appendedAt.Load(f.Position); ok {
				rec.Record(max(f.at.Sub(v.(time.Time)), 0))
			} else {
				rec.Record(0) // the frame beat Append's return
			}
		}}
		rs[i].connect(nil)
	}
	return rs
}

// resumer reads "orders" the way the dashboard does: when the hub drops it
// as a slow consumer (a reader that other tests starve of CPU can fall 256
// frames behind like a slow one), it reconnects with its last position.
type resumer struct {
	t       *testing.T
	url     string
	onEvent func(frame)
	c       *client
	got     []frame // the events of every connection, in arrival order
	drops   int
}

func (r *resumer) connect(since *int64) {
	r.t.Helper()
	c, err := dial(r.t, r.url)
	if err != nil {
		r.t.Fatal(err)
	}
	c.onEvent = r.onEvent
	go c.readLoop()
	if since == nil {
		c.subscribe("orders")
	} else {
		c.subscribe("orders", *since)
	}
	c.waitSubscribed(time.Minute, "orders")
	r.c = c
}

// readUntil reads until the event at head arrived, resuming after each
// slow-consumer drop, then closes the connection.
func (r *resumer) readUntil(what string, head int64) {
	r.t.Helper()
	at := func(evs []frame) bool { return len(evs) > 0 && evs[len(evs)-1].Position == head }
	for {
		r.c.waitUntil(time.Minute, what, func(c *client) bool { return at(c.events["orders"]) || c.closeErr != nil })
		evs := r.c.eventsOf("orders")
		r.got = append(r.got, evs...)
		if at(evs) {
			_ = r.c.ws.Close()
			return
		}
		if code, reason := closeCode(r.c.waitClosed(time.Minute)); code != hub.CloseSlowConsumer {
			r.t.Fatalf("%s: a reader was closed with %d %q", what, code, reason)
		}
		r.drops++
		since := int64(0)
		if len(r.got) > 0 {
			since = r.got[len(r.got)-1].Position
		}
		r.connect(&since)
	}
}

// TestSlowReaderIsDisconnectedWith4008WhileFastReadersKeepUp: a client that
// never reads fills its send queue and is closed with 4008; the fast
// readers get every event, and their latency is logged with and without it.
func TestSlowReaderIsDisconnectedWith4008WhileFastReadersKeepUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, func(c *hub.Config) {
		c.SocketSendBuffer = 16 << 10
		// The slow client reads only after the fast readers are done: its
		// writer, blocked on a full socket, must still be waiting then to
		// send the 4008 close frame. With the default 10 s a busy machine
		// would time that write out first (and the client see 1006).
		c.WriteWait = testenv.Patience
	})
	orders := newOrders(50)
	cust := func(int) string { return "c" }
	var appendedAt sync.Map
	onAppended := func(_ ulid.ULID, r eventstore.AppendResult, at time.Time) { appendedAt.Store(r.Position, at) }

	fastDrops := 0
	run := func(name string, from, n int64, slow *client) *benchstat.Recorder {
		rec := benchstat.New()
		rs := fastReaders(t, th.url, 5, &appendedAt, rec)
		before, _ := e.store.HeadPosition(t.Context())
		start := time.Now()
		appendLoad(t, e.store, orders, cust, from, n, 5, 2048, onAppended)
		var want []int64
		for _, ev := range allEvents(t, e.store) {
			if ev.Position > before {
				want = append(want, ev.Position)
			}
		}
		drops := 0
		for _, r := range rs {
			r.readUntil(name+": every event", want[len(want)-1])
			checkSequence(t, name, "orders", positions(r.got), want)
			drops += r.drops
		}
		if drops > 0 {
			t.Logf("%s: fast readers were dropped %d times (starved of CPU) and resumed without loss", name, drops)
		}
		fastDrops += drops
		t.Logf("%s: fast readers: %s", name, rec.Summary(time.Since(start), "frames"))
		return rec
	}
	run("without slow reader", 1, 20, nil)

	slow, err := dial(t, th.url, smallReadBuffer)
	if err != nil {
		t.Fatal(err)
	}
	slow.subscribe("orders")
	for _, o := range orders {
		slow.subscribe("order:" + o.String())
	}
	// Make sure the subscriptions are in place before the load (the
	// client does not read, so watch the gauge).
	deadline := time.Now().Add(time.Minute)
	for th.metric("hub_subscriptions") < float64(len(orders)+1) {
		if time.Now().After(deadline) {
			t.Fatalf("slow client's subscriptions not registered: %v", th.metric("hub_subscriptions"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	run("with slow reader", 21, 20, slow)

	deadline = time.Now().Add(time.Minute)
	for th.metric("hub_slow_disconnects_total") < float64(fastDrops+1) {
		if time.Now().After(deadline) {
			t.Fatal("slow reader was not disconnected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Now read: the frames in the socket buffers, then the close frame.
	go slow.readLoop()
	dumpDone := make(chan struct{})
	defer close(dumpDone)
	go func() { // diagnostics if the close never comes
		select {
		case <-dumpDone:
			return
		case <-time.After(20 * time.Second):
		}
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "streams/hub.") {
				fmt.Println(g + "\n")
			}
		}
	}()
	code, reason := closeCode(slow.waitClosed(time.Minute))
	if code != hub.CloseSlowConsumer || reason != hub.ReasonSlowConsumer {
		t.Errorf("slow reader closed with %d %q, want %d %q", code, reason, hub.CloseSlowConsumer, hub.ReasonSlowConsumer)
	}
}

// TestHubRestartUnderLoadClientsResumeWithoutLoss: hub A is stopped while
// events flow; its clients get 1001, reconnect to a new hub B with their
// last positions, and end up with every event exactly once.
func TestHubRestartUnderLoadClientsResumeWithoutLoss(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.startHub(t, nil)
	orders := newOrders(20)
	custName := func(i int) string { return fmt.Sprintf("c%d", i%3) }
	customerOf := map[ulid.ULID]string{}
	for i, o := range orders {
		customerOf[o] = custName(i)
	}
	channels := []string{"orders", "customer:c1", "order:" + orders[0].String(), "order:" + orders[7].String()}
	const nClients = 5
	first := make([]*client, nClients)
	for i := range first {
		first[i] = mustDial(t, a.url)
		for _, ch := range channels {
			first[i].subscribe(ch)
		}
		first[i].waitSubscribed(time.Minute, channels...)
	}
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		appendLoad(t, e.store, orders, custName, 1, 40, 4, 0, nil)
	}()
	first[0].waitUntil(time.Minute, "some events", func(c *client) bool { return len(c.events["orders"]) >= 200 })
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	for i, c := range first {
		// 1001 from the shutdown; a client that other tests starved of CPU
		// may have been dropped as a slow consumer (4008) a moment before.
		// Either way it resumes from its positions.
		switch code, reason := closeCode(c.waitClosed(time.Minute)); {
		case code == websocket.CloseGoingAway && reason == hub.ReasonGoingAway:
		case code == hub.CloseSlowConsumer:
			t.Logf("client %d was dropped as a slow consumer before the shutdown", i)
		default:
			t.Errorf("client %d: closed with %d %q, want 1001 going away", i, code, reason)
		}
	}
	b := e.startHub(t, nil) // started while the load runs
	second := make([]*client, nClients)
	for i, c := range first {
		second[i] = mustDial(t, b.url)
		for _, ch := range channels {
			evs := c.eventsOf(ch)
			since := int64(0)
			if len(evs) > 0 {
				since = evs[len(evs)-1].Position
			}
			second[i].subscribe(ch, since)
		}
	}
	select {
	case <-loadDone:
	case <-time.After(2 * time.Minute):
		t.Fatal("load did not finish")
	}
	all := allEvents(t, e.store)
	for i := range second {
		for _, ch := range channels {
			want := expected(all, ch, customerOf)
			second[i].waitUntil(time.Minute, "all of "+ch, func(c *client) bool {
				evs := c.events[ch]
				return len(evs) > 0 && evs[len(evs)-1].Position == want[len(want)-1]
			})
			got := append(positions(first[i].eventsOf(ch)), positions(second[i].eventsOf(ch))...)
			checkSequence(t, fmt.Sprintf("client %d", i), ch, got, want)
			if f := second[i].subscribed[ch]; !f.Recovered {
				t.Errorf("client %d %s: not recovered: %+v", i, ch, f)
			}
		}
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, func(c *hub.Config) {
		c.MaxSubscriptions = 3
		c.MaxFrameSize = 512
		c.AllowedOrigins = []string{"https://ops.example.com"}
	})

	t.Run("a frame above the size limit closes with 1009", func(t *testing.T) {
		c := mustDial(t, th.url)
		c.sendRaw([]byte(`{"type":"subscribe","channel":"customer:` + strings.Repeat("a", 600) + `"}`))
		if code, _ := closeCode(c.waitClosed(time.Minute)); code != websocket.CloseMessageTooBig {
			t.Errorf("closed with %d, want 1009", code)
		}
	})
	t.Run("subscriptions beyond the limit get too_many_subscriptions", func(t *testing.T) {
		c := mustDial(t, th.url)
		for i := range 4 {
			c.subscribe(fmt.Sprintf("customer:c%d", i))
		}
		c.waitUntil(time.Minute, "an error", func(c *client) bool { return len(c.errs) == 1 })
		if f := c.errs[0]; f.Code != hub.CodeTooManySubs || f.Channel != "customer:c3" || f.Message == "" {
			t.Errorf("error %+v", f)
		}
		c.waitSubscribed(time.Minute, "customer:c0", "customer:c1", "customer:c2")
		// Unsubscribing frees a slot.
		c.send(map[string]any{"type": "unsubscribe", "channel": "customer:c0"})
		c.subscribe("customer:c3")
		c.waitSubscribed(time.Minute, "customer:c3")
	})
	t.Run("a foreign origin is refused, an allowed one and same-origin accepted", func(t *testing.T) {
		if _, err := dial(t, th.url, withOrigin("https://evil.example.com")); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("foreign origin: %v, want 403", err)
		}
		for _, o := range []string{"https://ops.example.com", th.srv.URL} {
			c, err := dial(t, th.url, withOrigin(o))
			if err != nil {
				t.Errorf("origin %s: %v", o, err)
				continue
			}
			go c.readLoop()
		}
	})
	t.Run("bad frames get error frames, and the tenth closes with 1008", func(t *testing.T) {
		c := mustDial(t, th.url)
		bad := []struct{ frame, code string }{
			{`not json`, hub.CodeMalformed},
			{`{"type":"subscribe","channel":"orders","sinse":3}`, hub.CodeMalformed},
			{`[1,2]`, hub.CodeMalformed},
			{`{"type":"publish","channel":"orders"}`, hub.CodeUnknownType},
			{`{"type":"subscribe","channel":"order:nope"}`, hub.CodeBadChannel},
			{`{"type":"subscribe","channel":"order:01arz3ndektsv4rrffq69g5fav"}`, hub.CodeBadChannel},
			{`{"type":"subscribe","channel":"orders","since":-1}`, hub.CodeBadPosition},
			{`{"type":"subscribe","channel":"orders","since":1.5}`, hub.CodeMalformed},
			{`{"type":"unsubscribe","channel":"orders"}`, hub.CodeNotSubscribed},
		}
		for i, b := range bad {
			c.sendRaw([]byte(b.frame))
			c.waitUntil(time.Minute, "error for "+b.frame, func(c *client) bool { return len(c.errs) == i+1 })
			if got := c.errs[i]; got.Code != b.code || got.Message == "" {
				t.Errorf("%s: error %+v, want code %s", b.frame, got, b.code)
			}
		}
		if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil { // the tenth
			t.Fatal(err)
		}
		if code, reason := closeCode(c.waitClosed(time.Minute)); code != websocket.ClosePolicyViolation || reason != hub.ReasonPolicy {
			t.Errorf("closed with %d %q, want 1008", code, reason)
		}
		// The hub is unharmed.
		ok := mustDial(t, th.url)
		ok.subscribe("orders")
		ok.waitSubscribed(time.Minute, "orders")
	})
}

func TestShutdownSendsGoingAwayToEveryClientAndWaits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, nil)
	cs := make([]*client, 20)
	for i := range cs {
		cs[i] = mustDial(t, th.url)
		cs[i].subscribe("orders")
	}
	for _, c := range cs {
		c.waitSubscribed(time.Minute, "orders")
	}
	idle := mustDial(t, th.url) // no subscription
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := th.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i, c := range append(cs, idle) {
		if code, reason := closeCode(c.waitClosed(time.Minute)); code != websocket.CloseGoingAway || reason != hub.ReasonGoingAway {
			t.Errorf("client %d closed with %d %q", i, code, reason)
		}
	}
	if n := th.metric("hub_connections"); n != 0 {
		t.Errorf("hub_connections = %v after Shutdown", n)
	}
	if _, err := dial(t, th.url); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("dial after Shutdown: %v, want 503", err)
	}
}

func TestDeadAndIdleConnectionsAreClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, func(c *hub.Config) {
		// Short enough for a test, long enough that a client on a machine
		// busy with other tests always answers a ping in time.
		c.PongWait = 3 * time.Second
		c.PingPeriod = time.Second
		c.IdleTimeout = time.Second
	})
	// Alive: reads (so answers pings) and holds a subscription.
	alive := mustDial(t, th.url)
	alive.subscribe("orders")
	alive.waitSubscribed(time.Minute, "orders")
	// Dead: subscribed but never reads, so never answers a ping.
	dead, err := dial(t, th.url)
	if err != nil {
		t.Fatal(err)
	}
	dead.subscribe("orders")
	// Idle: answers pings, subscribes to nothing.
	idle := mustDial(t, th.url)

	if code, reason := closeCode(idle.waitClosed(time.Minute)); code != hub.CloseIdle || reason != hub.ReasonIdle {
		t.Errorf("idle closed with %d %q", code, reason)
	}
	deadline := time.Now().Add(time.Minute)
	for th.metric("hub_connections") > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("dead connection not closed: %v connections", th.metric("hub_connections"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * 3 * time.Second) // two pong waits
	alive.mu.Lock()
	err = alive.closeErr
	alive.mu.Unlock()
	if err != nil {
		t.Errorf("live client was closed: %v", err)
	}
}
