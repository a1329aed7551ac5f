package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// IdempotencyRetention is how long keys are kept; the API promises 24 h.
const IdempotencyRetention = 48 * time.Hour

// lockKey serializes requests sharing a key (a transaction-scoped advisory
// lock, released at commit or rollback), then returns the stored outcome if
// the key was used before. A key first used for another request is
// ErrIdempotencyKeyReused.
func lockKey(ctx context.Context, tx pgx.Tx, key string, fingerprint []byte) (Outcome, bool, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('idem:' || $1, 0))`, key); err != nil {
		return Outcome{}, false, fmt.Errorf("lock idempotency key: %w", err)
	}
	var (
		fp  []byte
		raw []byte
	)
	err := tx.QueryRow(ctx, `SELECT fingerprint, outcome FROM idempotency_keys WHERE key = $1`, key).Scan(&fp, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return Outcome{}, false, nil
	}
	if err != nil {
		return Outcome{}, false, fmt.Errorf("read idempotency key: %w", err)
	}
	if !bytes.Equal(fp, fingerprint) {
		return Outcome{}, true, ErrIdempotencyKeyReused
	}
	var out Outcome
	if err := json.Unmarshal(raw, &out); err != nil {
		return Outcome{}, true, fmt.Errorf("stored outcome for key: %w", err)
	}
	out.Replayed = true
	return out, true, nil
}

func saveKey(ctx context.Context, tx pgx.Tx, key string, fingerprint []byte, out Outcome) error {
	raw, err := json.Marshal(out)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (key, fingerprint, outcome) VALUES ($1, $2, $3)`, key, fingerprint, raw); err != nil {
		return fmt.Errorf("store idempotency key: %w", err)
	}
	return nil
}

// ExpireIdempotencyKeys deletes keys older than IdempotencyRetention, in
// small batches so that no long transaction holds locks.
func ExpireIdempotencyKeys(ctx context.Context, pool *pgxpool.Pool, now time.Time) (int64, error) {
	var total int64
	for {
		tag, err := pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE key IN (
			SELECT key FROM idempotency_keys WHERE created_at < $1 LIMIT 1000)`, now.Add(-IdempotencyRetention))
		if err != nil {
			return total, fmt.Errorf("expire idempotency keys: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 1000 {
			return total, nil
		}
	}
}
