// Package pipebench measures the whole pipeline of a running orderflow
// (every role): commands go in over HTTP at a fixed open-loop rate
// (internal/loadgen) while three observers watch what comes out.
//
// Freshness: the time from a command's 2xx to the moment every read model
// reflects it. One command in Config.FreshEvery is probed: its
// Consistency-Token is sent to the four query endpoints, each of which
// waits on its own read model's per-order version (queries' read-your-
// writes) and answers "Consistency: fresh" once the version is applied;
// the command's freshness is the slowest of the four. That is exact per
// order, per read model, and late by at most the server's poll interval
// (15 ms) plus a round trip — an upper bound, never flattering. The
// alternative, polling GET /v1/projections, was rejected: its position is
// the highest applied over Kafka partitions that are applied concurrently,
// so reaching a command's position does not mean the command is applied
// (it would understate freshness), and every poll costs nine queries.
// Sampling keeps the probes a small share of the load they measure; the
// samples dropped because the probe queue was full are counted.
//
// WebSocket: one real client (gorilla/websocket) on /v1/stream, subscribed
// to the orders channel, as a dashboard is. A command's token carries the
// global position of its last event, every event frame its position: the
// latency is from the 2xx to that frame, for every command.
//
// Lag: GET /v1/projections every second (the operator's view of each
// projection's and the relay's lag, kept as a time series), then every
// 100 ms after the load, to time the return to zero. Caught up means that
// view shows nothing behind and every probed command (the samples still in
// flight, and the last command of every client) is fresh in every read
// model: the projections' positions alone read zero while partitions still
// trail (seen in practice: zero within a second, orders seconds stale).
//
// FindMax repeats Run at increasing rates to find the highest one whose
// lag stays bounded for the whole window.
package pipebench
