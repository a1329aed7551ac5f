package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/streams/envelope"
)

// Path is where Register mounts the hub.
const Path = "/v1/stream"

// refusalConsumer is the hub's consumer label in
// kafka_rejected_messages_total.
const refusalConsumer = "hub"

// ReasonPositionNotInStore is the hub's own refusal: a verified event whose
// position the store does not hold when the sequencer reads up to it
// (sequencer.go).
const ReasonPositionNotInStore envelope.Reason = "position_not_in_store"

// Hub serves WebSocket subscriptions to the event log; DESIGN.md has its
// goroutines, queues, lock order and ordering argument.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics
	refused  *envelope.Refusals
	cust     *customers
	upgrader websocket.Upgrader

	customerSubs atomic.Int64 // customer:<id> subscriptions; zero skips customer look-ups

	// recoverySlots holds one token per recovery store read in flight
	// (Config.MaxRecoveries).
	recoverySlots chan struct{}

	mu        sync.Mutex
	ready     bool // Run has read the head
	closed    bool // Shutdown started
	head      int64
	channels  map[string]*channel
	conns     map[*conn]struct{}
	perClient map[string]int // open connections per ClientKey
	wg        sync.WaitGroup // connection goroutines
}

type channel struct {
	cn   channelName
	subs map[*subscription]struct{}
}

type subscription struct {
	c          *conn
	ch         *channel
	last       int64 // last position queued on this channel
	recovering bool
	pending    []pendingFrame // live frames held while recovering
}

type pendingFrame struct {
	pos int64
	pm  *websocket.PreparedMessage
}

// New builds a Hub. Serve it with Register or ServeHTTP, and feed it with
// Run.
func New(cfg Config) (*Hub, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("hub metrics: %w", err)
	}
	h := &Hub{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "hub"),
		m:        m,
		channels: make(map[string]*channel),
		conns:    make(map[*conn]struct{}),

		perClient:     make(map[string]int),
		recoverySlots: make(chan struct{}, cfg.MaxRecoveries),
	}
	if h.refused, err = envelope.NewRefusals(cfg.Registerer, refusalConsumer, h.log, ReasonPositionNotInStore); err != nil {
		return nil, fmt.Errorf("hub metrics: %w", err)
	}
	if h.cust, err = newCustomers(cfg.CustomerCache, m.customerLoads.Inc); err != nil {
		return nil, fmt.Errorf("hub customers: %w", err)
	}
	h.upgrader = websocket.Upgrader{
		// Small buffers keep idle connections cheap; data frames are
		// PreparedMessages written straight to the socket, and the pool
		// serves the rare buffered write.
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     h.checkOrigin,
		// Bounds the 101 response's write: the server's own deadlines
		// end with the hijack, and the writer sets one per frame after.
		HandshakeTimeout: cfg.WriteWait,
		// A browser that offers its token as a "bearer.<token>"
		// subprotocol offers this one beside it, and gets this one back:
		// the token is never echoed (internal/auth).
		Subprotocols: []string{auth.StreamProtocol},
	}
	return h, nil
}

// Register mounts the hub on GET /v1/stream.
func (h *Hub) Register(mux *http.ServeMux) { mux.Handle("GET "+Path, h) }

func (h *Hub) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser: Origin protects browsers' users only
	}
	for _, a := range h.cfg.AllowedOrigins {
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// Run consumes the topic and fans events out until ctx ends; then it shuts
// the connections down (Shutdown, bounded by Config.ShutdownTimeout) and
// returns.
func (h *Hub) Run(ctx context.Context) error {
	head, err := h.cfg.Store.HeadPosition(ctx)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	msgs, err := h.cfg.Subscriber.Subscribe(ctx, h.cfg.Topic)
	if err != nil {
		return fmt.Errorf("hub: subscribe %s: %w", h.cfg.Topic, err)
	}
	h.mu.Lock()
	h.head, h.ready = head, true
	h.mu.Unlock()
	h.m.head.Set(float64(head))
	h.log.Info("hub consuming", "topic", h.cfg.Topic, "head", head)

	// dispatch runs in the ingest goroutine, under Run's ctx.
	emit := func(e eventstore.RecordedEvent) { h.dispatch(ctx, e) }
	seq := &sequencer{store: h.cfg.Store, last: head, emit: emit, onFill: func(n int) {
		h.m.storeFills.Inc()
		h.m.filledEvents.Add(float64(n))
	}, onDrop: func(e eventstore.RecordedEvent) {
		h.refused.Add(&envelope.RefusedError{Reason: ReasonPositionNotInStore,
			Detail: fmt.Sprintf("position %d (order %s, version %d) is beyond what the store holds", e.Position, e.StreamID, e.Version)})
	}}
	err = h.ingest(ctx, msgs, seq)

	sctx, cancel := context.WithTimeout(context.Background(), h.cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, h.Shutdown(sctx))
}

// Shutdown closes every connection with 1001 "going away" and waits for
// their goroutines; new upgrades get 503. http.Server.Shutdown does not
// close hijacked connections: call this (Run does, when its ctx ends).
// When ctx ends first, the remaining sockets are closed hard and ctx's
// error is returned.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.kill(CloseGoingAway, ReasonGoingAway)
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			_ = c.ws.NetConn().Close()
		}
		<-done
		return fmt.Errorf("hub shutdown: %w", ctx.Err())
	}
}

// ServeHTTP upgrades GET /v1/stream to a WebSocket. A connection beyond
// Config.MaxConnections or Config.MaxConnectionsPerClient is upgraded and
// closed at once, with 1013 or 4029 and a reason: a browser sees close
// codes, never the status of a refused upgrade.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	ok := h.ready && !h.closed
	h.mu.Unlock()
	if !ok {
		p := httpx.Unavailable("Hub not serving", "the hub is starting or shutting down; retry")
		p.RetryAfter = 1
		httpx.WriteProblem(w, r, p)
		return
	}
	// The route's rule (internal/auth) answered 401 or 403 already; a hub
	// served without one serves nobody.
	who, ok := auth.FromContext(r.Context())
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="orderflow"`)
		httpx.WriteProblem(w, r, httpx.NewProblem(http.StatusUnauthorized, "unauthenticated", "Authentication required",
			"this route is served without its access rule; send a bearer token"))
		return
	}
	key := h.cfg.ClientKey(r)
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade wrote the error response (400, 403, ...)
	}
	if tc, ok := ws.NetConn().(*net.TCPConn); ok && h.cfg.SocketSendBuffer > 0 {
		_ = tc.SetWriteBuffer(h.cfg.SocketSendBuffer)
	}
	c := newConn(h, ws, key, who)
	h.mu.Lock()
	code, reason, limit := 0, "", ""
	switch {
	case h.closed:
		code, reason = CloseGoingAway, ReasonGoingAway
	case len(h.conns) >= h.cfg.MaxConnections:
		code, reason, limit = CloseTryAgainLater, ReasonNodeFull, "node"
	case h.perClient[key] >= h.cfg.MaxConnectionsPerClient:
		code, reason, limit = CloseTooManyConnections, ReasonTooManyConnections, "client"
	}
	if code != 0 {
		h.mu.Unlock()
		if limit != "" {
			h.m.refused.WithLabelValues(limit).Inc()
		}
		h.refuse(ws, code, reason)
		return
	}
	h.conns[c] = struct{}{}
	h.perClient[key]++
	h.wg.Add(2)
	h.mu.Unlock()
	h.m.connections.Inc()
	go c.writeLoop()
	go c.readLoop()
}

// refuse closes a connection that was never registered: the close frame,
// then up to closeGrace for the client's (so that it reads our frame rather
// than a reset), then the socket. It runs in the upgrade's own goroutine.
func (h *Hub) refuse(ws *websocket.Conn, code int, reason string) {
	defer func() { _ = ws.Close() }()
	if ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(h.cfg.WriteWait)) != nil {
		return
	}
	ws.SetReadLimit(h.cfg.MaxFrameSize)
	_ = ws.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		if _, _, err := ws.NextReader(); err != nil {
			return
		}
	}
}

// unregister drops a closing connection's subscriptions.
func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	for _, sub := range c.subs {
		h.removeSubLocked(sub)
	}
	delete(h.conns, c)
	if h.perClient[c.key]--; h.perClient[c.key] <= 0 {
		delete(h.perClient, c.key)
	}
	h.mu.Unlock()
	h.m.connections.Dec()
}

func (h *Hub) removeSubLocked(sub *subscription) {
	ch := sub.ch
	delete(ch.subs, sub)
	if len(ch.subs) == 0 {
		delete(h.channels, ch.cn.name)
	}
	delete(sub.c.subs, ch.cn.name)
	if len(sub.c.subs) == 0 {
		sub.c.idleSince = time.Now()
	}
	h.m.subscriptions.Dec()
	if ch.cn.kind == kindCustomer {
		h.customerSubs.Add(-1)
	}
}
