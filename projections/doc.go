// Package projections builds the read models from the event stream.
//
// A Projection turns changes of one order (its state before and after one
// event) into rows. The Runtime applies events delivered by Kafka, at least
// once and in per-order order, with exactly-once effect: in one transaction
// it checks the event's version against the version the projection last
// applied to that order, applies it, records the new version and state, and
// advances the checkpoint. An older version is a redelivery and is skipped;
// a version ahead is a gap (a lost or reordered delivery) and the missing
// events are read from the event store first.
//
// Rebuild replays the event store (never Kafka) into shadow tables with COPY,
// catches up to the head, and swaps them in atomically; queries keep reading
// the old tables until the swap. Both paths fold events with the same domain
// code and map states to rows with the same functions, which is why a
// rebuilt model equals the live one (a test compares every row).
package projections
