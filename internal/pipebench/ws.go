package pipebench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/orderflow/orderflow/internal/benchstat"
)

// The frame types this client uses, from the protocol (streams/hub/doc.go,
// protocol.schema.json). The benchmark is a client of the public protocol
// like any dashboard, not of the hub's code (a port only cmd wires).
const (
	frameSubscribe  = "subscribe"
	frameSubscribed = "subscribed"
	frameEvent      = "event"
	frameError      = "error"
)

// wsClock matches commands with their WebSocket frames by global position:
// a command's Consistency-Token carries the position of its last event, and
// every frame on the orders channel carries its event's position. Whichever
// of the two arrives second records the latency from the 2xx to the frame.
type wsClock struct {
	mu        sync.Mutex
	answered  map[int64]time.Time // positions of 2xx commands still waiting for their frame
	unmatched map[int64]time.Time // frames no command has claimed (yet)
	purged    time.Time
	rec       *benchstat.Recorder
	frames    int64
	// early counts frames read before their command's answer was: a
	// latency recorded as the histogram's floor (1 µs).
	early int64
}

// unmatchedTTL is how long a frame waits for its command's answer. Most
// frames never get one: only the last event of each command is matched,
// and commands of the warm-up are not measured. A 2xx is read well within
// this of its frame.
const unmatchedTTL = 10 * time.Second

func newWSClock() *wsClock {
	return &wsClock{answered: map[int64]time.Time{}, unmatched: map[int64]time.Time{}, rec: benchstat.New()}
}

// answer records a command answered 2xx at at, whose last event is at
// position pos.
func (w *wsClock) answer(pos int64, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t, ok := w.unmatched[pos]; ok {
		delete(w.unmatched, pos)
		w.rec.Record(t.Sub(at))
		if t.Before(at) {
			w.early++
		}
		return
	}
	w.answered[pos] = at
}

// frame records an event frame of position pos read at at.
func (w *wsClock) frame(pos int64, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.frames++
	if t, ok := w.answered[pos]; ok {
		delete(w.answered, pos)
		w.rec.Record(at.Sub(t))
		return
	}
	w.unmatched[pos] = at
	if at.Sub(w.purged) >= time.Second {
		for p, t := range w.unmatched {
			if at.Sub(t) > unmatchedTTL {
				delete(w.unmatched, p)
			}
		}
		w.purged = at
	}
}

// waiting is how many answered commands have not had their frame.
func (w *wsClock) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.answered)
}

// wsFeed is one real WebSocket client on /v1/stream, subscribed to the
// orders channel. It reconnects after a drop (a slow-consumer close, say)
// and resumes from the last position it read, as a dashboard does; frames
// that come late that way are charged to the latency.
type wsFeed struct {
	url        string
	authz      string // Authorization header
	clock      *wsClock
	log        *slog.Logger
	reconnects int
	last       int64
}

// wsURL is the stream endpoint of an http:// base URL.
func wsURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Scheme = "ws"
	u.Path = "/v1/stream"
	return u.String(), nil
}

// frameHead is the part of a server frame the feed reads; data and the
// other fields are skipped by the decoder.
type frameHead struct {
	Type     string `json:"type"`
	Position int64  `json:"position"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

// subscribe connects and subscribes, and returns once the hub answered
// subscribed; since < 0 subscribes from now.
func (f *wsFeed) subscribe(ctx context.Context, since int64) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var h http.Header
	if f.authz != "" {
		h = http.Header{"Authorization": {f.authz}}
	}
	conn, _, err := websocket.DefaultDialer.DialContext(dctx, f.url, h)
	if err != nil {
		return nil, fmt.Errorf("websocket %s: %w", f.url, err)
	}
	msg := map[string]any{"type": frameSubscribe, "channel": "orders"}
	if since >= 0 {
		msg["since"] = since
	}
	if err := conn.WriteJSON(msg); err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var h frameHead
		if err := conn.ReadJSON(&h); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("websocket subscribe: %w", err)
		}
		switch h.Type {
		case frameSubscribed:
			f.last = max(f.last, h.Position)
			_ = conn.SetReadDeadline(time.Time{})
			return conn, nil
		case frameEvent: // recovered history before subscribed
			f.clock.frame(h.Position, time.Now())
			f.last = max(f.last, h.Position)
		case frameError:
			_ = conn.Close()
			return nil, fmt.Errorf("websocket subscribe: %s: %s", h.Code, h.Message)
		}
	}
}

// read reads frames until ctx ends, reconnecting after a drop.
func (f *wsFeed) read(ctx context.Context, conn *websocket.Conn) {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer func() { stop(); _ = conn.Close() }()
	for {
		_, b, err := conn.ReadMessage()
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.log.Warn("websocket dropped; resuming from the last position", "err", err, "position", f.last)
			f.reconnects++
			_ = conn.Close()
			for {
				if conn, err = f.subscribe(ctx, f.last); err == nil {
					break
				}
				if ctx.Err() != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			stop()
			stop = context.AfterFunc(ctx, func() { _ = conn.Close() })
			continue
		}
		var h frameHead
		if err := json.Unmarshal(b, &h); err != nil {
			f.log.Warn("websocket frame not JSON", "err", err)
			continue
		}
		switch h.Type {
		case frameEvent:
			f.clock.frame(h.Position, now)
			f.last = max(f.last, h.Position)
		case frameError:
			f.log.Warn("websocket error frame", "code", h.Code, "message", h.Message)
		}
	}
}
