package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/hub"
	"github.com/orderflow/orderflow/streams/kafka"
)

const testTopic = testenv.Topic

// env is a store, a kfake broker with the events topic, and a running relay.
type env struct {
	*testenv.Env
	store   *eventstore.Store
	brokers []string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := testenv.New(t)
	e.StartRelay(t, nil)
	return &env{Env: e, store: e.Store, brokers: e.Kafka(t)}
}

// testHub is a running Hub behind an httptest server.
type testHub struct {
	*hub.Hub
	reg  *prometheus.Registry
	srv  *httptest.Server
	url  string // ws://…/v1/stream
	stop func() error
}

func (e *env) startHub(t testing.TB, mod func(*hub.Config)) *testHub {
	t.Helper()
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Config:      kafka.Config{Brokers: e.brokers, DialTimeout: 2 * time.Second},
		StartOffset: kafka.LastOffset, MaxWait: 100 * time.Millisecond,
	}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := hub.Config{
		Store: e.store, Subscriber: sub, Topic: testTopic, Verifier: testenv.EventVerifier(t), PollInterval: 200 * time.Millisecond,
		Registerer: reg, Logger: testenv.Logger(t),
		// Hang guards, not targets: a test client starved of CPU by other
		// tests still gets its frames, and its close frame, however late.
		WriteWait: testenv.Patience, ShutdownTimeout: testenv.Patience,
		// Every test client is 127.0.0.1: the connection caps are lifted
		// unless a test (of the caps) sets them.
		MaxConnections: 1 << 20, MaxConnectionsPerClient: 1 << 20,
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	// As served: the token verified before the hub (whose channel rules
	// read the principal); dial sends a staff token unless told otherwise.
	srv := httptest.NewServer(auth.Authenticate(testenv.Verifier(t), mux))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var once sync.Once
	var stopErr error
	th := &testHub{Hub: h, reg: reg, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + hub.Path}
	th.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(2 * testenv.Patience):
				stopErr = fmt.Errorf("hub Run did not return within %s", 2*testenv.Patience)
			}
			_ = sub.Close()
			srv.Close()
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := th.stop(); err != nil {
			t.Errorf("hub stop: %v", err)
		}
	})
	// Ready once the upgrade endpoint stops answering 503.
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+hub.Path, nil)
		req.Header.Set("Authorization", testenv.Bearer(t, testenv.StaffSubject, auth.Staff))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("hub not ready within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return th
}

func (th *testHub) metric(name string, labels ...string) float64 {
	mfs, err := th.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ok := true
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				ok = ok && found
			}
			if !ok {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

// frame is any server frame.
type frame struct {
	Type       string          `json:"type"`
	Channel    string          `json:"channel"`
	Position   int64           `json:"position"`
	StreamID   string          `json:"stream_id"`
	Version    int64           `json:"version"`
	EventType  string          `json:"event_type"`
	Data       json.RawMessage `json:"data"`
	RecordedAt time.Time       `json:"recorded_at"`
	Recovered  bool            `json:"recovered"`
	Code       string          `json:"code"`
	Message    string          `json:"message"`
	at         time.Time
	raw        []byte
}

// client is a real WebSocket client over TCP that records every frame.
type client struct {
	t  testing.TB
	ws *websocket.Conn

	mu         sync.Mutex
	frames     []frame
	events     map[string][]frame
	subscribed map[string]frame
	errs       []frame
	closeErr   error
	changed    chan struct{}
	done       chan struct{}
	onEvent    func(frame)
	started    atomic.Bool
}

type dialOpt func(*websocket.Dialer, http.Header)

func dial(t testing.TB, url string, opts ...dialOpt) (*client, error) {
	t.Helper()
	d := &websocket.Dialer{HandshakeTimeout: testenv.Patience}
	hdr := http.Header{}
	for _, o := range opts {
		o(d, hdr)
	}
	if hdr.Get("Authorization") == "" && len(d.Subprotocols) == 0 {
		hdr.Set("Authorization", testenv.Bearer(t, testenv.StaffSubject, auth.Staff))
	}
	ws, resp, err := d.Dial(url, hdr)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (status %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	c := &client{t: t, ws: ws, events: map[string][]frame{}, subscribed: map[string]frame{},
		changed: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() {
		_ = ws.Close()
		if c.started.Load() {
			<-c.done
		}
	})
	return c, nil
}

func mustDial(t testing.TB, url string, opts ...dialOpt) *client {
	t.Helper()
	c, err := dial(t, url, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	go c.readLoop()
	return c
}

func (c *client) readLoop() {
	c.started.Store(true)
	defer close(c.done)
	for {
		_, b, err := c.ws.ReadMessage()
		now := time.Now()
		if err != nil {
			c.mu.Lock()
			c.closeErr = err
			c.signalLocked()
			c.mu.Unlock()
			return
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.t.Errorf("server sent a non-JSON frame %q: %v", b, err)
			continue
		}
		f.at, f.raw = now, b
		if f.Type == "event" && c.onEvent != nil {
			c.onEvent(f)
		}
		c.mu.Lock()
		c.frames = append(c.frames, f)
		switch f.Type {
		case "event":
			c.events[f.Channel] = append(c.events[f.Channel], f)
		case "subscribed":
			c.subscribed[f.Channel] = f
		case "error":
			c.errs = append(c.errs, f)
		}
		c.signalLocked()
		c.mu.Unlock()
	}
}

func (c *client) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.sendRaw(b)
}

func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	_ = c.ws.SetWriteDeadline(time.Now().Add(testenv.Patience))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Errorf("client write: %v", err)
	}
}

func (c *client) subscribe(channel string, since ...int64) {
	m := map[string]any{"type": "subscribe", "channel": channel}
	if len(since) > 0 {
		m["since"] = since[0]
	}
	c.send(m)
}

// waitUntil waits until cond (called under the client's lock) holds.
func (c *client) waitUntil(timeout time.Duration, what string, cond func(c *client) bool) {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		ok, ch := cond(c), c.changed
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			c.t.Fatalf("waited %s for %s; close error %v, %d frames, errors %+v", timeout, what, c.closeErr, len(c.frames), c.errs)
		}
	}
}

func (c *client) waitSubscribed(timeout time.Duration, channels ...string) {
	c.t.Helper()
	c.waitUntil(timeout, fmt.Sprintf("subscribed to %v", channels), func(c *client) bool {
		for _, ch := range channels {
			if _, ok := c.subscribed[ch]; !ok {
				return false
			}
		}
		return true
	})
}

func (c *client) waitClosed(timeout time.Duration) error {
	c.t.Helper()
	c.waitUntil(timeout, "the connection to close", func(c *client) bool { return c.closeErr != nil })
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

func (c *client) eventsOf(channel string) []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]frame(nil), c.events[channel]...)
}

func closeCode(err error) (int, string) {
	if ce, ok := err.(*websocket.CloseError); ok {
		return ce.Code, ce.Text
	}
	return 0, fmt.Sprint(err)
}

// smallReadBuffer makes the client's socket receive buffer tiny, so that a
// client that does not read backs the hub up quickly.
func smallReadBuffer(d *websocket.Dialer, _ http.Header) {
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_ = nc.(*net.TCPConn).SetReadBuffer(4096)
		}
		return nc, err
	}
}

// withToken dials with this Authorization: Bearer token.
func withToken(tok string) dialOpt {
	return func(_ *websocket.Dialer, h http.Header) { h.Set("Authorization", "Bearer "+tok) }
}

func withOrigin(o string) dialOpt {
	return func(_ *websocket.Dialer, h http.Header) { h.Set("Origin", o) }
}

// orderEvents returns n events of one order: OrderCreated for customer,
// then ItemAdded, each with pad bytes of padding.
func orderEvent(order ulid.ULID, customer string, v int64, pad int) eventstore.EventData {
	typ := "ItemAdded"
	data := fmt.Sprintf(`{"sku":"sku-%d","quantity":1,"unit_price_minor":100,"pad":%q}`, v, strings.Repeat("x", pad))
	if v == 1 {
		typ = "OrderCreated"
		data = fmt.Sprintf(`{"order_id":%q,"customer_id":%q,"currency":"EUR","pad":%q}`, order, customer, strings.Repeat("x", pad))
	}
	return eventstore.EventData{ID: ulid.Make(), Type: typ, SchemaVersion: 1, Data: json.RawMessage(data)}
}

// appendLoad appends perOrder events to each order, writers goroutines,
// each owning every writers-th order and advancing its orders round-robin.
// onAppended gets each append's result and the time Append returned.
func appendLoad(t testing.TB, s *eventstore.Store, orders []ulid.ULID, customerOf func(int) string, from, perOrder int64,
	writers, pad int, onAppended func(order ulid.ULID, res eventstore.AppendResult, at time.Time)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for v := from; v < from+perOrder; v++ {
				for i := w; i < len(orders); i += writers {
					st := eventstore.Stream{ID: orders[i], Type: "order"}
					exp := eventstore.Exact(v - 1)
					if v == 1 {
						exp = eventstore.NoStream()
					}
					res, err := s.Append(ctx, st, exp, []eventstore.EventData{orderEvent(orders[i], customerOf(i), v, pad)})
					if err != nil {
						t.Errorf("append %s v%d: %v", orders[i], v, err)
						return
					}
					if onAppended != nil {
						onAppended(orders[i], res, time.Now())
					}
				}
			}
		})
	}
	wg.Wait()
}

func newOrders(n int) []ulid.ULID {
	out := make([]ulid.ULID, n)
	for i := range out {
		out[i] = ulid.Make()
	}
	return out
}

// allEvents reads the whole store in position order.
func allEvents(t testing.TB, s *eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	after := int64(0)
	for {
		evs, err := s.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
		if len(evs) < 1000 {
			return out
		}
		after = evs[len(evs)-1].Position
	}
}
