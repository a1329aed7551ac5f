// Package projections builds the read models from the event stream.
//
// A Projection turns changes of orders (each order's state before and after
// each event) into rows. Its Builder accumulates the changes of many orders
// in memory — one row per order, counters summed — and writes what they add
// up to.
//
// The Runtime applies events delivered by Kafka, at least once and in
// per-order order, with exactly-once effect, a batch at a time (ApplyBatch;
// batch.go states the steps and the lock order): in one transaction it locks
// the versions rows of the batch's orders with one statement, in stream id
// order; skips every event at or below the version the projection last
// applied to its order (a redelivery); reads from the event store the
// versions missing before one that is ahead (a gap: a lost or reordered
// delivery); folds the rest in memory from the stored state; and writes the
// new versions and states, the model's rows (one set-based statement per
// table) and the checkpoints, all in three round trips whatever the batch's
// size. An event that cannot be decoded is rejected with its order's later
// events in the batch; the rest commits. An order with a dead letter is
// parked: its new events are parked beside it, not applied (park.go), until
// an operator replays or discards the letters (deadletters.go; the argument
// for a table is in streams/projector's package doc). Handle is a batch of one, for an
// event retried alone. Transient says whether a failed batch should be
// retried as it is.
//
// Rebuild replays the event store (never Kafka) into shadow tables with COPY,
// catches up to the head with the live batch code, and swaps them in
// atomically; queries keep reading the old tables until the swap. Both paths
// fold events with the same function and sum changes with the same
// builders, which is why a rebuilt model equals the live one (a test
// compares every row).
package projections
