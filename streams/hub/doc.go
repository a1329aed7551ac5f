// Package hub serves the event log to dashboards over WebSocket: live events
// from Kafka, catch-up from the event store, without a seam.
//
// # Protocol
//
// Endpoint GET /v1/stream (WebSocket upgrade). JSON text frames. The JSON
// Schema of every frame is protocol.schema.json in this directory.
//
// Authentication. The upgrade carries a bearer token (a JWT, see
// internal/auth): in the Authorization header where the client can set one,
// or, from a browser (which cannot), as a subprotocol beside the
// protocol's own:
//
//	new WebSocket(url, ["orderflow.v1", "bearer." + token])
//
// The hub answers Sec-WebSocket-Protocol: orderflow.v1 and never echoes
// the token; the token never appears in a URL. Without a valid token the
// upgrade is refused with 401 (a role that may read no channel: 403),
// before any WebSocket exists: a browser sees the connection fail (1006)
// and learns why from any API call with the same token. A connection lives
// as long as its token: at the token's exp the hub closes it with 4001
// "token expired"; reconnect with a fresh token and resubscribe with your
// positions, which loses nothing.
//
// Authorization, per subscribe, from internal/auth's rule table: orders
// (every order's events) is for staff and analysts, never customers;
// customer:<id> for staff, analysts and that customer; order:<id> for
// staff, analysts and the order's customer. A customer subscribing to
// orders or another's customer channel gets error forbidden; to another
// customer's order, or one that does not exist, error not_found (the same
// answer, so existence is not revealed). Both count as bad frames.
//
// Client → server:
//
//	{"type":"subscribe","channel":"order:<id>" | "customer:<id>" | "orders","since":<position>?}
//	{"type":"unsubscribe","channel":...}
//
// Several channels per connection (at most Config.MaxSubscriptions, default
// 128). order:<id> takes the order's ULID in its canonical upper-case form
// (as stream_id is written); customer:<id> takes 1..100 printable
// characters (order.MaxCustomerIDLen). Unknown fields are errors.
//
// Server → client:
//
//	{"type":"event","channel","position","stream_id","version","event_type","data","recorded_at","trace_id"?}
//	{"type":"subscribed","channel","position","recovered":true|false}
//	{"type":"error","code","message","channel"?}
//
// position is the resume token of its channel: strictly increasing within
// the channel and enough to resume exactly. It comes from the store, never
// from arrival order: the version on order:<id>, the global position on
// customer:<id> and orders. Within a channel events arrive in position
// order; on order:<id> the versions are 1, 2, 3… with none missing.
//
// Subscribing. Without since the hub answers subscribed with the channel's
// current position and recovered:false (load the state from the query
// API, then apply events). With since the hub first sends every event of
// the channel after since from the event store, then subscribed, then live
// events, with no gap and no duplicate at the seam. subscribed.position is
// the last position the client now has; every later event of the channel
// has a greater one. recovered:false after a since means the position was
// too old to recover (more than Config.RecoveryWindow, default 10 000,
// positions behind: global positions on orders and customer:<id>, versions
// on order:<id>): reload state from the query API; live events continue
// from subscribed.position. A since at or beyond the node's head (the
// client came from a node further on) is kept: events up to it are not
// sent again. order:<id> without since is answered from the stream's
// current version (one index probe), never by reading the stream.
//
// Errors have a stable code (CodeMalformed "malformed_frame",
// "unknown_type", "bad_channel", "bad_position", "too_many_subscriptions",
// "already_subscribed", "not_subscribed", "unavailable", "rate_limited",
// "forbidden", "not_found"), a
// message, and the channel when one is concerned. Every client-caused error
// counts as a bad frame; Config.MaxBadFrames (10) of them close the
// connection. rate_limited: a connection's subscribes are a token bucket
// (Config.SubscribeBurst 64 at once, Config.SubscribeRate 10 per second).
//
// Close codes: 1001 "going away" (the hub shuts down: reconnect, resubscribe
// with your positions), 1008 "too many bad frames", 1009 a frame above
// Config.MaxFrameSize (4096 bytes), 1013 "too many connections on this
// node" (Config.MaxConnections, 10 000: try later or another node), 4000
// "idle: no subscription" (none for Config.IdleTimeout, 2 min), 4001 "token
// expired" (the token the connection was opened with reached its exp:
// reconnect with a fresh one and your positions), 4008 "slow
// consumer: send queue full" (the client did not read fast enough: its send
// queue of Config.SendQueue = 256 frames filled; reconnect with your
// positions), 4029 "too many connections from this client"
// (Config.MaxConnectionsPerClient, 32, per Config.ClientKey: the token's
// subject once authenticated). A refused
// connection is upgraded and closed at once, so browsers see the code. The hub pings every 54 s
// and closes a connection that sent nothing, not even a pong, for 60 s.
// Origin: same-origin or Config.AllowedOrigins; requests without Origin
// (non-browser clients) are accepted; others get 403.
//
// # Operation
//
// Run consumes the events topic with its own consumer identity (a
// streams/kafka.Subscriber with no GroupID and StartOffset LastOffset), so
// every node sees every partition and nodes scale out behind any load
// balancer. A message the relay did not sign (Config.Verifier) is dropped
// before it is sequenced, so it is never fanned out and cannot move or
// stall the global order; so is a signed one whose position the store does
// not hold (sequencer.go). Both are counted in
// kafka_rejected_messages_total{consumer="hub",reason} and logged at most
// once per 10 s: the hub has no dead-letter queue. Shutdown closes every
// connection with 1001 and waits for its goroutines. Metrics: hub_connections, hub_subscriptions,
// hub_frames_sent_total, hub_slow_disconnects_total, hub_recoveries_total
// {recovered}, hub_sequencer_store_fills_total,
// hub_sequencer_filled_events_total, hub_customer_store_lookups_total,
// hub_bad_kafka_messages_total, hub_head_position,
// hub_refused_connections_total{limit}, hub_subscribes_rate_limited_total,
// kafka_rejected_messages_total{consumer,reason}.
// The store reads of subscribes go to Config.RecoveryStore (cmd gives it a
// pool of its own), at most Config.MaxRecoveries at once, so live delivery
// never waits for a connection behind a replay.
//
// DESIGN.md in this directory has the goroutines, queues, lock order and
// the ordering argument; sequencer.go the global-order argument.
package hub
