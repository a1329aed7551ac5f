package eventstore

import (
	"context"
	"fmt"
)

// ScanStreams calls fn for every event at or below position upTo, stream by
// stream, each stream in version order: the read a bulk rebuild folds. Rows
// stream from the server (constant memory). Positions are commit-ordered, so
// "position <= upTo" is a consistent snapshot once upTo has been seen.
//
// The primary key (stream_id, version) of each partition delivers the order;
// ULID stream ids follow creation time, and streams are written around their
// creation, so that index order stays close to heap order.
func (s *Store) ScanStreams(ctx context.Context, upTo int64, fn func(RecordedEvent) error) error {
	rows, err := s.db.Query(ctx, selectEvents+`WHERE position <= $1 ORDER BY stream_id, version`, upTo)
	if err != nil {
		return fmt.Errorf("scan streams: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return fmt.Errorf("scan streams: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
