package eventstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"
)

// ScanStreams calls fn for every event at or below position upTo, stream by
// stream, each stream in version order: the read a bulk rebuild folds. Rows
// stream from the server (constant memory). Positions are commit-ordered, so
// "position <= upTo" is a consistent snapshot once upTo has been seen.
//
// Metadata is not read (Metadata is zero): read models have no use for it,
// and decoding it was a sixth of a rebuild's client time.
//
// The primary key (stream_id, version) of each partition delivers the order;
// ULID stream ids follow creation time, and streams are written around their
// creation, so that index order stays close to heap order.
func (s *Store) ScanStreams(ctx context.Context, upTo int64, fn func(RecordedEvent) error) error {
	rows, err := s.db.Query(ctx, `SELECT event_id, stream_id, stream_type, version, event_type, schema_version,
		data, recorded_at, position FROM events WHERE position <= $1 ORDER BY stream_id, version`, upTo)
	if err != nil {
		return fmt.Errorf("scan streams: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e       RecordedEvent
			id, sid pgtype.UUID
			schema  int32
		)
		if err := rows.Scan(&id, &sid, &e.StreamType, &e.Version, &e.Type, &schema, &e.Data, &e.RecordedAt, &e.Position); err != nil {
			return fmt.Errorf("scan streams: %w", err)
		}
		e.ID, e.StreamID, e.SchemaVersion = id.Bytes, sid.Bytes, int(schema)
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
