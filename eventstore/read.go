package eventstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

const selectEvents = `SELECT event_id, stream_id, stream_type, version, event_type, schema_version,
	data, metadata, recorded_at, position FROM events `

// ReadStream returns up to limit events of one stream from fromVersion on,
// in version order. The stream id prunes the scan to one partition.
func (s *Store) ReadStream(ctx context.Context, stream Stream, fromVersion int64, limit int) ([]RecordedEvent, error) {
	rows, err := s.db.Query(ctx, selectEvents+`WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3`,
		uuidOf(stream.ID), max(fromVersion, 1), limit)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream.ID, err)
	}
	evs, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream.ID, err)
	}
	return evs, nil
}

// StreamVersion returns a stream's current version, 0 if it has no events.
func (s *Store) StreamVersion(ctx context.Context, stream Stream) (int64, error) {
	var v int64
	err := s.db.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1`, uuidOf(stream.ID)).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("stream version %s: %w", stream.ID, err)
	}
	return v, nil
}

// ReadAll returns up to limit events with a position above after, in
// position order. It is gap-safe (see the package doc): an event that
// commits after this call returns will have a position above every position
// returned here.
func (s *Store) ReadAll(ctx context.Context, after int64, limit int) ([]RecordedEvent, error) {
	rows, err := s.db.Query(ctx, selectEvents+`WHERE position > $1 ORDER BY position LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read all after %d: %w", after, err)
	}
	evs, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("read all after %d: %w", after, err)
	}
	return evs, nil
}

// HeadPosition returns the highest visible position, 0 for an empty store.
func (s *Store) HeadPosition(ctx context.Context) (int64, error) {
	var p int64
	// The position index answers max() with one probe per partition.
	if err := s.db.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM events`).Scan(&p); err != nil {
		return 0, fmt.Errorf("head position: %w", err)
	}
	return p, nil
}

func collect(rows pgx.Rows) ([]RecordedEvent, error) {
	var out []RecordedEvent
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func scanEvent(row pgx.Row) (RecordedEvent, error) {
	var (
		e             RecordedEvent
		id, sid       pgtype.UUID
		schema        int32
		data, rawMeta []byte
	)
	if err := row.Scan(&id, &sid, &e.StreamType, &e.Version, &e.Type, &schema, &data, &rawMeta, &e.RecordedAt, &e.Position); err != nil {
		return RecordedEvent{}, err
	}
	e.ID, e.StreamID, e.SchemaVersion, e.Data = id.Bytes, sid.Bytes, int(schema), data
	if err := json.Unmarshal(rawMeta, &e.Metadata); err != nil {
		return RecordedEvent{}, fmt.Errorf("event %s metadata: %w", e.ID, err)
	}
	return e, nil
}
