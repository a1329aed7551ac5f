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
// transaction hazard and no reset after a logical restore.
//
// Group commit. The price of that lock is that commits serialize on it, and
// handing it from backend to backend costs more than a commit. So Append does
// not run its own transaction: concurrent Appends are queued and one worker
// goroutine runs everything queued as one call of events_append_batch — one
// statement, one transaction, one WAL flush and one hand-over of the global
// lock for up to 256 appends — while the next batch queues ("natural
// batching": no timer, no latency added when idle). Each append is decided on
// its own, in arrival order, against the versions the earlier ones left, and
// gets its own result: appended, replayed (a retry with the same event IDs),
// or an error that fails it alone. The queue is bounded; when it is full,
// Append blocks until there is room or its ctx ends. The worker exists only
// while there is work, so a Store needs no Run or Close. AppendBatch uses
// the same statement for one caller's requests. AppendKeyed carries a
// RequestKey (an idempotency key): the key is stored by the statement that
// appends, so a keyed append rides group commit too and happens at most once
// per key. AppendTx appends inside the caller's transaction
// (events_append) and holds the global lock to its commit. DESIGN.md has the goroutines, lock order, ordering argument and
// the measured figures.
//
// Append-only is enforced by the database: triggers reject UPDATE, DELETE and
// TRUNCATE for every role, and no serving role may write to the events table
// at all. The append functions are SECURITY DEFINER (search_path pinned,
// pg_temp last) and executable by the command role alone, which may also
// read and expire the request keys they store; the other roles only read
// (migrations/00005_roles.sql, 00006_append_keys.sql).
package eventstore
