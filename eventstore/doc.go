// Package eventstore is an append-only, partitioned PostgreSQL event store.
//
// It knows streams, versions and positions, never orders. A stream is
// identified by a ULID; its leading 48 bits (creation time) pick the monthly
// range partition, so every event of a stream lives in one partition, stream
// reads prune to it, and the primary key (stream_id, version) is globally
// unique even though the table is partitioned.
//
// Global order. Every event gets a position from one sequence. Positions are
// handed out only while the transaction holds the global append lock (a
// statement-level trigger takes it, so no writer can bypass it), and that lock
// is released only after the commit is visible. Hence positions become
// visible in increasing order: a reader that has seen position P will never
// later see an event below P. ReadAll(after P) is therefore gap-safe with a
// plain "position > P" and needs no xid snapshot arithmetic, no long-running
// transaction hazard and no reset after a logical restore. The price is that
// commits serialize on that lock; group commit (many appends in one
// transaction, see AppendBatch) amortizes it. See DESIGN.md.
//
// Append-only is enforced by the database: triggers reject UPDATE, DELETE and
// TRUNCATE for every role, and the application role is granted only SELECT
// and INSERT.
package eventstore
