package eventstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"
)

// AppendRequest is one stream's share of a batch.
type AppendRequest struct {
	Stream   Stream
	Expected ExpectedVersion
	Events   []EventData
}

// BatchResult is one request's outcome: Err is per request (a wrong expected
// version fails that request only).
type BatchResult struct {
	AppendResult
	Err error
}

// AppendBatch appends several streams' events in one transaction and one
// round trip: group commit, one WAL flush for all of them. Each request
// succeeds or fails on its own; the returned error is for the transaction
// as a whole (then nothing was written).
//
// All stream locks are taken first, in key order, before any insert takes
// the global append lock: two batches sharing streams then wait for each
// other instead of deadlocking.
func (s *Store) AppendBatch(ctx context.Context, reqs []AppendRequest) ([]BatchResult, error) {
	args := make([][]any, len(reqs))
	results := make([]BatchResult, len(reqs))
	ids := make([]ulid.ULID, 0, len(reqs))
	for i, r := range reqs {
		a, err := appendArgs(r.Stream, r.Expected, r.Events)
		if err != nil {
			results[i].Err = err
			continue
		}
		args[i] = a
		ids = append(ids, r.Stream.ID)
	}
	if len(ids) == 0 {
		return results, nil
	}
	slices.SortFunc(ids, func(a, b ulid.ULID) int { return bytes.Compare(a[:], b[:]) })

	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT count(pg_advisory_xact_lock(k)) FROM (
			SELECT DISTINCT hashtextextended(s::text, 0) AS k FROM unnest($1::uuid[]) AS s ORDER BY 1) AS x`, uuids(ids))
		for _, a := range args {
			if a != nil {
				b.Queue(`SELECT outcome, actual, from_version, to_version, last_position
					FROM events_append($1, $2, $3, $4, $5, $6, $7, $8)`, a...)
			}
		}
		br := tx.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return fmt.Errorf("lock streams: %w", err)
		}
		for i, a := range args {
			if a == nil {
				continue
			}
			var (
				outcome            string
				actual             int64
				from, to, position *int64
			)
			if err := br.QueryRow().Scan(&outcome, &actual, &from, &to, &position); err != nil {
				_ = br.Close()
				return fmt.Errorf("append to %s: %w", reqs[i].Stream.ID, mapError(err))
			}
			res, err := appendOutcome(reqs[i].Stream, reqs[i].Expected, outcome, actual, from, to, position)
			results[i] = BatchResult{AppendResult: res, Err: err}
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("append batch: %w", err)
	}
	return results, nil
}
