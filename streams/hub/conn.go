package hub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/orderflow/orderflow/internal/auth"
)

// closeGrace is how long the writer waits, after its close frame, for the
// client's close frame before it closes the socket (so that the client reads
// the close frame instead of a reset).
const closeGrace = time.Second

// conn is one WebSocket connection: gorilla's reader + writer pair.
type conn struct {
	h    *Hub
	ws   *websocket.Conn
	key  string                          // Config.ClientKey of the upgrade request
	who  auth.Principal                  // the token's; its Expires closes the connection (4001)
	send chan *websocket.PreparedMessage // SendQueue frames; full → 4008 (see DefaultSendQueue)
	// drained has room for one signal: the writer wrote a frame. A reader
	// pushing recovery history waits on it.
	drained    chan struct{}
	readerDone chan struct{}

	ctx    context.Context // done when the connection is closing
	cancel context.CancelFunc
	once   sync.Once
	code   int    // close code for the writer, set once before cancel
	reason string // close reason

	// Guarded by Hub.mu.
	subs      map[string]*subscription
	idleSince time.Time

	bad int // bad frames so far; reader goroutine only
	// subscribes is the token bucket of subscribe frames (nil: no limit);
	// reader goroutine only.
	subscribes *rate.Limiter
}

func newConn(h *Hub, ws *websocket.Conn, key string, who auth.Principal) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	var subscribes *rate.Limiter
	if h.cfg.SubscribeRate > 0 {
		subscribes = rate.NewLimiter(rate.Limit(h.cfg.SubscribeRate), h.cfg.SubscribeBurst)
	}
	return &conn{
		h: h, ws: ws, key: key, who: who, ctx: ctx, cancel: cancel, subscribes: subscribes,
		send:       make(chan *websocket.PreparedMessage, h.cfg.SendQueue),
		drained:    make(chan struct{}, 1),
		readerDone: make(chan struct{}),
		subs:       make(map[string]*subscription),
		idleSince:  time.Now(),
	}
}

// kill starts closing the connection; the writer sends code (0: no close
// frame) and closes the socket. Only the first call counts; it reports
// whether it was the first.
func (c *conn) kill(code int, reason string) bool {
	first := false
	c.once.Do(func() {
		c.code, c.reason, first = code, reason, true
		c.cancel()
	})
	return first
}

// enqueue queues a frame without blocking; false means the queue is full.
func (c *conn) enqueue(pm *websocket.PreparedMessage) bool {
	select {
	case c.send <- pm:
		return true
	default:
		return false
	}
}

// reply queues a frame of the reader's own (error, subscribed).
func (c *conn) reply(pm *websocket.PreparedMessage) {
	if !c.enqueue(pm) {
		c.h.slow(c)
	}
}

// waitQueueAtMost blocks the reader until at most n frames are queued, or
// the connection ends.
func (c *conn) waitQueueAtMost(n int) error {
	for len(c.send) > n {
		select {
		case <-c.ctx.Done():
			return c.ctx.Err()
		case <-c.drained:
		case <-time.After(10 * time.Millisecond): // drained has one slot; re-check anyway
		}
	}
	return nil
}

// pushHistory queues a recovered frame, waiting while the queue is ¾ full
// so that live frames of other channels keep room. Only the reader calls
// it; it blocks nobody else.
func (c *conn) pushHistory(pm *websocket.PreparedMessage) error {
	if err := c.waitQueueAtMost(c.h.cfg.SendQueue*3/4 - 1); err != nil {
		return err
	}
	if !c.enqueue(pm) {
		return fmt.Errorf("send queue full")
	}
	return nil
}

func (c *conn) writeLoop() {
	cfg := &c.h.cfg
	ping := time.NewTicker(cfg.PingPeriod)
	// The connection lives as long as its token: then 4001, and the client
	// reconnects with a fresh token and its positions. (A verified token
	// always has an exp; a principal without one is closed at once.)
	expiry := time.NewTimer(time.Until(c.who.Expires))
	defer func() {
		ping.Stop()
		expiry.Stop()
		_ = c.ws.Close() // unblocks the reader
		c.h.wg.Done()
	}()
	for {
		select { // a pending close wins over queued frames
		case <-c.ctx.Done():
			c.writeClose()
			return
		default:
		}
		select {
		case <-c.ctx.Done():
			c.writeClose()
			return
		case pm := <-c.send:
			_ = c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteWait))
			if err := c.ws.WritePreparedMessage(pm); err != nil {
				c.kill(0, "")
				return
			}
			c.h.m.framesSent.Inc()
			select {
			case c.drained <- struct{}{}:
			default:
			}
		case <-expiry.C:
			c.kill(CloseTokenExpired, ReasonTokenExpired)
		case <-ping.C:
			c.h.mu.Lock()
			idle := len(c.subs) == 0 && time.Since(c.idleSince) >= cfg.IdleTimeout
			c.h.mu.Unlock()
			if idle {
				c.kill(CloseIdle, ReasonIdle)
				continue
			}
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteWait)); err != nil {
				c.kill(0, "")
				return
			}
		}
	}
}

func (c *conn) writeClose() {
	if c.code == 0 {
		return
	}
	msg := websocket.FormatCloseMessage(c.code, c.reason)
	if c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.h.cfg.WriteWait)) != nil {
		return
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select { // the reader ends on the client's close frame
	case <-c.readerDone:
	case <-t.C:
	}
}

func (c *conn) readLoop() {
	cfg := &c.h.cfg
	defer func() {
		c.h.unregister(c)
		close(c.readerDone)
		c.h.wg.Done()
	}()
	c.ws.SetReadLimit(cfg.MaxFrameSize)
	_ = c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait)) })
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			// Closed by the client, by the writer, dead (no pong within
			// PongWait) or a frame above MaxFrameSize (gorilla sent 1009).
			c.kill(0, "")
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
		if typ != websocket.TextMessage {
			c.fail(CodeMalformed, "frames are JSON text frames", "")
		} else {
			c.handle(data)
		}
		if c.bad >= cfg.MaxBadFrames {
			c.kill(ClosePolicy, ReasonPolicy)
			return
		}
		if c.ctx.Err() != nil {
			return
		}
	}
}

// fail answers a bad client frame; MaxBadFrames of them close the
// connection with 1008.
func (c *conn) fail(code, msg, channel string) {
	c.bad++
	c.reply(errorMessage(code, msg, channel))
}

func (c *conn) handle(data []byte) {
	f, err := decodeClientFrame(data)
	if err != nil {
		c.fail(CodeMalformed, "want a JSON object {\"type\",\"channel\",\"since\"?}: "+err.Error(), "")
		return
	}
	switch f.Type {
	case TypeSubscribe:
		if c.subscribes != nil && !c.subscribes.Allow() {
			c.h.m.rateLimited.Inc()
			c.fail(CodeRateLimited, fmt.Sprintf("at most %d subscribes at once and %g per second per connection",
				c.h.cfg.SubscribeBurst, c.h.cfg.SubscribeRate), f.Channel)
			return
		}
		c.subscribe(f)
	case TypeUnsubscribe:
		c.unsubscribe(f)
	default:
		c.fail(CodeUnknownType, fmt.Sprintf("type %q: want %q or %q", f.Type, TypeSubscribe, TypeUnsubscribe), f.Channel)
	}
}

func (c *conn) unsubscribe(f clientFrame) {
	h := c.h
	h.mu.Lock()
	sub := c.subs[f.Channel]
	if sub != nil {
		h.removeSubLocked(sub)
	}
	h.mu.Unlock()
	if sub == nil {
		c.fail(CodeNotSubscribed, "not subscribed to this channel", f.Channel)
	}
}
