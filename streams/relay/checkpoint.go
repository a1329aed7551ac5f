package relay

import (
	"context"
	"fmt"
)

// loadCheckpoint returns the stored checkpoint of the relay's topic,
// creating the row at 0 on first use.
func (r *Relay) loadCheckpoint(ctx context.Context) (int64, error) {
	var p int64
	err := r.cfg.Pool.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO relay_checkpoints (name, position) VALUES ($1, 0)
			ON CONFLICT (name) DO NOTHING RETURNING position)
		SELECT position FROM ins
		UNION ALL SELECT position FROM relay_checkpoints WHERE name = $1
		LIMIT 1`, r.cfg.Topic).Scan(&p)
	if err != nil {
		return 0, fmt.Errorf("load checkpoint %s: %w", r.cfg.Topic, err)
	}
	return p, nil
}

// saveCheckpoint moves the checkpoint forward to p, never backwards: a
// stale leader finishing a write late cannot undo a newer leader's progress
// (and what it records was acknowledged anyway).
func (r *Relay) saveCheckpoint(ctx context.Context, p int64) error {
	_, err := r.cfg.Pool.Exec(ctx, `UPDATE relay_checkpoints SET position = $2, updated_at = now()
		WHERE name = $1 AND position < $2`, r.cfg.Topic, p)
	if err != nil {
		return fmt.Errorf("save checkpoint %s at %d: %w", r.cfg.Topic, p, err)
	}
	return nil
}

// resetCheckpoint is the one backwards move, for the fresh-topic rule
// (topic.go): the topic lost everything, so everything is sent again.
func (r *Relay) resetCheckpoint(ctx context.Context) error {
	_, err := r.cfg.Pool.Exec(ctx, `UPDATE relay_checkpoints SET position = 0, updated_at = now() WHERE name = $1`, r.cfg.Topic)
	if err != nil {
		return fmt.Errorf("reset checkpoint %s: %w", r.cfg.Topic, err)
	}
	return nil
}
