// Package projector feeds the read models from Kafka, in batches.
//
// Each projection is its own consumer group ("orderflow.projection.<name>")
// read by a kafka.BatchConsumer, so a slow or failing read model never holds
// back another, and a rebuild of one leaves the others running. The
// consumer takes the messages of all the partitions this process holds, up
// to MaxBatch (1000) events or Linger (10ms) after the first, and the
// runtime applies them to the projection in one transaction
// (projections.Runtime.ApplyBatch: versions rows locked in stream id order
// with one statement, folded in memory, each table written with one
// set-based statement, checkpoints in the same transaction). Offsets are
// committed every CommitInterval (1s), for all partitions in one request,
// and only for batches whose transaction committed: at least once, made
// exactly once in effect by the version check, which also absorbs the up to
// one second of batches replayed after a crash. One batch per projection is
// in flight at a time, so a partition's events are applied in order.
//
// # Why not watermill's Router for the batches
//
// The Router hands a handler one message and acks it when the handler
// returns; it has no notion of many messages in one transaction, and its
// subscriber contract (ack one message, then the next of that partition) is
// exactly the one-message-in-flight bound this package exists to remove.
// Batches therefore bypass it. Watermill stays where it serves: the
// publisher to the dead-letter topic (refused messages), and the Router
// with the project's middleware (correlation, poison queue, retry,
// recoverer) for events retried alone.
//
// # A bad event in a batch
//
//   - A message the relay did not sign (no signature, a forged one, a key
//     that is not, or no longer, accepted: Config.Verifier): it is never
//     decoded or applied, so it cannot take the place of the order's next
//     version. It goes to orders.events.dlq at once, without retries (a
//     forgery does not get better), with the reason in reason_poisoned,
//     and kafka_rejected_messages_total{consumer=<group>,reason} counts it
//     (not projection_dlq_total: the read model misses nothing). The
//     order's real events are applied as they come.
//   - An envelope that does not parse, an event that does not decode, or a
//     gap the store cannot fill: the runtime rejects that event and its
//     order's later events in the batch; the rest of the batch commits.
//   - An event of an order that is parked for the projection (below): the
//     batch parks it beside the others, in its own transaction, without a
//     retry; the rest of the batch is applied.
//   - Any other failure of the batch that is not transient (a statement an
//     event makes fail, a panic): nothing commits, and every event of the
//     batch is retried alone.
//   - A transient failure (database unreachable or restarting, deadlock
//     victim): the whole batch is handed over again after a pause, and no
//     event goes near the dead-letter queue for it.
//
// An event retried alone goes through a handoff (a one-message watermill
// Subscriber) to the Router's handler named after the projection, where it
// is applied in its own transaction with up to MaxRetries retries (none
// when the read model refuses its values, projections.Permanent: a CHECK
// or a range error is met again on every retry, while the other orders of
// the projection wait); if it still fails, the poison queue hands it to the parker, which parks it in
// projection_dead_letters with the error as its reason (the order is parked
// from then on), projection_dlq_total counts it, and it is acked. If it still fails for a transient reason (the database went
// away meanwhile), it is nacked instead, and the whole batch is handed over
// again later. The batch's offsets advance only after every event retried
// alone is settled. Only the bad event (and the later events of its order,
// which cannot be applied without it) is dead-lettered; the other orders go
// on.
//
// # Dead letters: a table, not the topic
//
// A projection's dead letters are rows of projection_dead_letters
// (projections/park.go), not messages of orders.events.dlq, because what an
// operator does with them is a question about orders, and only a table
// answers it under the order's lock:
//
//   - Park the order's later events. Applying version n+1 after a parked n
//     would be wrong, and without a record of "this order is parked" each
//     later event would fail again (its gap fill reads n from the store),
//     cost the full retry budget, and hold back every other order of the
//     projection meanwhile. Each batch asks, in the round trip that locks its
//     orders' versions rows, which of them are parked; their events are
//     parked at once, and the checkpoint and offsets move past them.
//   - List and filter by projection and order, with the age and the
//     reason; show one whole (orderflow dlq list, show). A topic is read
//     from an offset: filtering is a scan, and "which orders are parked" is
//     a fold of the whole topic.
//   - Replay idempotently: the letters of one order are applied in version
//     order, in one transaction with the order's versions row locked (as
//     every batch locks it) and with their state set to replayed, so a
//     second replay finds nothing parked and changes nothing, and a batch
//     sees the order either parked or replayed. A topic message cannot be
//     marked done; a re-publish to orders.events would be a second
//     producer on the signed topic.
//   - Discard with who and why: the state changes in the transaction that
//     writes the audit entry (internal/audit).
//
// The topic stays for what is not a read model's: messages the relay did
// not sign are published there as they came, for the security runbook,
// and no projection misses them.
//
// # Metrics
//
// projection_dlq_total{projection} counts the events parked by the poison
// queue; projection_events_parked_total (from projections) the later events
// parked behind them; projection_dead_letters{projection} is what is parked
// now, read from the table at scrape time.
// kafka_rejected_messages_total{consumer,reason} (consumer: the
// projection's group id; reason: unsigned, malformed, unknown_key,
// bad_signature), also logged, at most once per 10 s per projection.
// projection_lag_events and projection_lag_seconds (label projection),
// computed at scrape time from this process's consumers: events in Kafka
// not yet applied, summed over the partitions held here, and the age of the
// oldest of them (see streams/kafka's DESIGN.md). The runtime's counters and
// projection_batch_size / projection_batch_seconds come from projections;
// orderflow_consumer_* count only the events retried alone.
//
// # Tracing
//
// Each batch of each projection is one span ("project <name>", Config.Tracer),
// linked to the trace context every event of the batch recorded at append,
// read from the signed envelope (trace.go; the argument is in
// internal/tracing). Its log lines carry the span's trace_id and span_id.
package projector
