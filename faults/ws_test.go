package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/testenv"
)

// dashboard is a WebSocket client as a dashboard is one: subscribed to
// "orders", and when its connection ends it reconnects (to the next hub in
// its list) and resubscribes with since = the last position it saw. It
// records every event position, every close code, and every violation of
// the protocol's promise: positions strictly increasing on the channel,
// across reconnects.
type dashboard struct {
	t     testing.TB
	urls  []string // ws://host:port/v1/stream
	authz string   // a staff token: the firehose is staff's

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	last       int64
	positions  []int64
	closeCodes []int // one per ended connection; 1006: no close frame (the node died)
	connects   int
	violations []string
}

func startDashboard(t testing.TB, hubURLs ...string) *dashboard {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &dashboard{t: t, ctx: ctx, cancel: cancel, authz: testenv.Bearer(t, testenv.StaffSubject, auth.Staff)}
	for _, u := range hubURLs {
		d.urls = append(d.urls, "ws"+strings.TrimPrefix(u, "http")+"/v1/stream")
	}
	d.wg.Go(d.run)
	t.Cleanup(d.stop)
	return d
}

func (d *dashboard) stop() {
	d.cancel()
	d.wg.Wait()
}

func (d *dashboard) run() {
	backoff := 20 * time.Millisecond
	for n := 0; d.ctx.Err() == nil; n++ {
		if d.session(d.urls[n%len(d.urls)]) {
			backoff = 20 * time.Millisecond
		}
		select {
		case <-d.ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// session is one connection: subscribe from the last position, read until
// the connection ends. It reports whether it got as far as subscribing.
func (d *dashboard) session(url string) bool {
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, res, err := dialer.DialContext(d.ctx, url, http.Header{"Authorization": {d.authz}})
	if err != nil {
		if res != nil {
			_ = res.Body.Close()
		}
		return false
	}
	stop := context.AfterFunc(d.ctx, func() { _ = ws.Close() })
	defer stop()
	defer func() { _ = ws.Close() }()
	d.mu.Lock()
	since := d.last
	d.connects++
	d.mu.Unlock()
	if err := ws.WriteJSON(map[string]any{"type": "subscribe", "channel": "orders", "since": since}); err != nil {
		return false
	}
	for {
		var f struct {
			Type     string `json:"type"`
			Channel  string `json:"channel"`
			Position int64  `json:"position"`
			Code     string `json:"code"`
			Message  string `json:"message"`
		}
		_, b, err := ws.ReadMessage()
		if err != nil {
			if d.ctx.Err() == nil {
				code := websocket.CloseAbnormalClosure
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					code = ce.Code
				}
				d.mu.Lock()
				d.closeCodes = append(d.closeCodes, code)
				d.mu.Unlock()
			}
			return true
		}
		if err := json.Unmarshal(b, &f); err != nil {
			d.violate("a frame that is not JSON: %q", b)
			continue
		}
		switch f.Type {
		case "event":
			d.mu.Lock()
			if f.Position <= d.last {
				d.violations = append(d.violations, fmt.Sprintf("position %d after %d (a repeat or a step back)", f.Position, d.last))
			} else {
				d.last = f.Position
				d.positions = append(d.positions, f.Position)
			}
			d.mu.Unlock()
		case "subscribed":
		case "error":
			// unavailable: the hub could not read the store for the
			// recovery; resubscribe on a new connection.
			if f.Code != "unavailable" {
				d.violate("error frame %s: %s", f.Code, f.Message)
			}
			return true
		default:
			d.violate("unknown frame %q", b)
		}
	}
}

func (d *dashboard) violate(format string, args ...any) {
	d.mu.Lock()
	d.violations = append(d.violations, fmt.Sprintf(format, args...))
	d.mu.Unlock()
}

func (d *dashboard) lastPosition() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

func (d *dashboard) codes() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int(nil), d.closeCodes...)
}

// waitFor waits until the dashboard has seen position head.
func (d *dashboard) waitFor(t testing.TB, head int64) time.Duration {
	t.Helper()
	return waitFor(t, fmt.Sprintf("the dashboard to see position %d", head), func() bool { return d.lastPosition() >= head })
}

// check compares what the dashboard saw with the store: every committed
// position once, none that is not committed, in increasing order. It
// returns the positions missed and the violations (repeats, steps back).
func (d *dashboard) check(t testing.TB, evs []eventstore.RecordedEvent) (missed, violations int) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := make(map[int64]bool, len(d.positions))
	for _, p := range d.positions {
		seen[p] = true
	}
	committed := make(map[int64]bool, len(evs))
	for _, ev := range evs {
		committed[ev.Position] = true
		if !seen[ev.Position] {
			missed++
			if missed <= 5 {
				t.Errorf("dashboard: committed position %d never seen", ev.Position)
			}
		}
	}
	for _, p := range d.positions {
		if !committed[p] {
			t.Errorf("dashboard: saw position %d, which is not in the store", p)
		}
	}
	for i, v := range d.violations {
		if i < 5 {
			t.Errorf("dashboard: %s", v)
		}
	}
	return missed, len(d.violations)
}

// summary says what the dashboard went through.
func (d *dashboard) summary() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Sprintf("%d connections, close codes %v, %d events seen up to position %d, %d repeats or steps back",
		d.connects, d.closeCodes, len(d.positions), d.last, len(d.violations))
}
