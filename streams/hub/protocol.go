package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/tracing"
	"github.com/orderflow/orderflow/order"
)

// Frame types (the "type" field of every frame).
const (
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypeEvent       = "event"
	TypeSubscribed  = "subscribed"
	TypeError       = "error"
)

// Error codes of error frames. They are stable: clients branch on them.
const (
	CodeMalformed         = "malformed_frame"        // not a JSON object of a known shape
	CodeUnknownType       = "unknown_type"           // "type" is not subscribe or unsubscribe
	CodeBadChannel        = "bad_channel"            // channel name is not order:<ulid>, customer:<id> or orders
	CodeBadPosition       = "bad_position"           // since is negative
	CodeTooManySubs       = "too_many_subscriptions" // Config.MaxSubscriptions reached
	CodeAlreadySubscribed = "already_subscribed"
	CodeNotSubscribed     = "not_subscribed"
	CodeUnavailable       = "unavailable"  // the event store failed during recovery; retry later
	CodeRateLimited       = "rate_limited" // Config.SubscribeRate exceeded; counts as a bad frame
	CodeForbidden         = "forbidden"    // the token's roles may not read this channel (orders, another customer's)
	CodeNotFound          = "not_found"    // order:<id> of an order that is not the customer's, or does not exist
)

// Close codes the hub sends. 1009 (frame above Config.MaxFrameSize) is sent
// by gorilla/websocket itself.
const (
	CloseGoingAway          = websocket.CloseGoingAway       // 1001: the hub shuts down; reconnect elsewhere with your positions
	ClosePolicy             = websocket.ClosePolicyViolation // 1008: Config.MaxBadFrames bad frames
	CloseTooBig             = websocket.CloseMessageTooBig   // 1009: a frame above Config.MaxFrameSize
	CloseTryAgainLater      = websocket.CloseTryAgainLater   // 1013: the node has Config.MaxConnections; try another node or later
	CloseIdle               = 4000                           // no subscription for Config.IdleTimeout
	CloseTokenExpired       = 4001                           // the token the connection was opened with expired: reconnect with a fresh one
	CloseSlowConsumer       = 4008                           // send queue full: the client did not keep up
	CloseTooManyConnections = 4029                           // this client has Config.MaxConnectionsPerClient open
)

// Close reasons, sent with the close codes above.
const (
	ReasonGoingAway          = "going away"
	ReasonPolicy             = "too many bad frames"
	ReasonIdle               = "idle: no subscription"
	ReasonTokenExpired       = "token expired"
	ReasonSlowConsumer       = "slow consumer: send queue full"
	ReasonNodeFull           = "too many connections on this node"
	ReasonTooManyConnections = "too many connections from this client"
)

// clientFrame is what a client sends.
type clientFrame struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Since   *int64 `json:"since"`
}

// eventFrame carries one event on one channel. Position is the channel's
// resume token: the version on order:<id>, the global position elsewhere.
type eventFrame struct {
	Type       string          `json:"type"`
	Channel    string          `json:"channel"`
	Position   int64           `json:"position"`
	StreamID   string          `json:"stream_id"`
	Version    int64           `json:"version"`
	EventType  string          `json:"event_type"`
	Data       json.RawMessage `json:"data"`
	RecordedAt time.Time       `json:"recorded_at"`
	// TraceID is the trace of the request that appended the event
	// (metadata.traceparent, internal/tracing); absent for events recorded
	// without one.
	TraceID string `json:"trace_id,omitempty"`
}

type subscribedFrame struct {
	Type      string `json:"type"`
	Channel   string `json:"channel"`
	Position  int64  `json:"position"`
	Recovered bool   `json:"recovered"`
}

type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Channel string `json:"channel,omitempty"`
}

// decodeClientFrame parses one client frame strictly: unknown fields and
// trailing data are errors, so a typo ("sinse") is reported, not ignored.
func decodeClientFrame(b []byte) (clientFrame, error) {
	var f clientFrame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, err
	}
	if dec.More() {
		return f, errors.New("trailing data after the JSON object")
	}
	return f, nil
}

// chanKind says how a channel selects events and numbers them.
type chanKind int

const (
	kindAll      chanKind = iota // "orders": every event, global positions
	kindOrder                    // "order:<ulid>": one order, versions
	kindCustomer                 // "customer:<id>": one customer's orders, global positions
)

const (
	chanAll        = "orders"
	prefixOrder    = "order:"
	prefixCustomer = "customer:"
)

type channelName struct {
	name  string
	kind  chanKind
	order ulid.ULID // kindOrder
}

// logName is how logs name the channel: a customer channel without its
// customer id, which is the customer's pseudonym (internal/pii/DESIGN.md).
func (cn channelName) logName() string {
	if cn.kind == kindCustomer {
		return prefixCustomer + "(redacted)"
	}
	return cn.name
}

// parseChannel validates a channel name. Order ids must be in canonical
// (upper-case) ULID form, the form stream_id has in every frame, so that one
// order has exactly one channel name.
func parseChannel(s string) (channelName, error) {
	switch {
	case s == chanAll:
		return channelName{name: s, kind: kindAll}, nil
	case strings.HasPrefix(s, prefixOrder):
		id, err := ulid.ParseStrict(s[len(prefixOrder):])
		if err != nil || id.String() != s[len(prefixOrder):] {
			return channelName{}, fmt.Errorf("channel %q: the order id must be an upper-case ULID", s)
		}
		return channelName{name: s, kind: kindOrder, order: id}, nil
	case strings.HasPrefix(s, prefixCustomer):
		id := s[len(prefixCustomer):]
		if id == "" || utf8.RuneCountInString(id) > order.MaxCustomerIDLen || strings.IndexFunc(id, unicode.IsControl) >= 0 {
			return channelName{}, fmt.Errorf("channel %q: the customer id must be 1..%d printable characters", s, order.MaxCustomerIDLen)
		}
		return channelName{name: s, kind: kindCustomer}, nil
	}
	return channelName{}, fmt.Errorf("channel %q: want %q, %q<order id> or %q<customer id>", s, chanAll, prefixOrder, prefixCustomer)
}

// position is e's position on a channel of kind k.
func position(k chanKind, e eventstore.RecordedEvent) int64 {
	if k == kindOrder {
		return e.Version
	}
	return e.Position
}

func prepare(v any) *websocket.PreparedMessage {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs of strings, ints and raw JSON from the store
		panic(fmt.Sprintf("hub: encode frame: %v", err))
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		panic(fmt.Sprintf("hub: prepare frame: %v", err))
	}
	return pm
}

func eventMessage(ch channelName, e eventstore.RecordedEvent) *websocket.PreparedMessage {
	data := e.Data
	if !json.Valid(data) { // never let a bad row break the frame for everyone
		data = json.RawMessage("null")
	}
	return prepare(eventFrame{
		Type: TypeEvent, Channel: ch.name, Position: position(ch.kind, e), StreamID: e.StreamID.String(),
		Version: e.Version, EventType: e.Type, Data: data, RecordedAt: e.RecordedAt.UTC(),
		TraceID: tracing.TraceID(e.Metadata.TraceParent),
	})
}

func subscribedMessage(channel string, pos int64, recovered bool) *websocket.PreparedMessage {
	return prepare(subscribedFrame{Type: TypeSubscribed, Channel: channel, Position: pos, Recovered: recovered})
}

func errorMessage(code, msg, channel string) *websocket.PreparedMessage {
	return prepare(errorFrame{Type: TypeError, Code: code, Message: msg, Channel: channel})
}
