package pii

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// RewrapPage is how many data keys Rewrap reads and re-wraps per statement.
const RewrapPage = 500

// Rewrap re-wraps every data key not wrapped by the master key current
// (the one Wrap uses), a page at a time, and returns how many it re-wrapped.
// Each row's wrapped key and master key id change together, and only if the
// row still holds what was read, so readers and a concurrent erasure are
// never disturbed: the key is readable before, during and after. It runs as
// the schema owner (the serving roles may not update keys).
func (k *Keys) Rewrap(ctx context.Context, current string) (int, error) {
	n := 0
	for {
		rows, err := k.db.Query(ctx, `SELECT key_id, master_key_id, wrapped FROM customer_keys
			WHERE master_key_id <> $1 ORDER BY key_id LIMIT $2`, current, RewrapPage)
		if err != nil {
			return n, fmt.Errorf("rewrap: %w", err)
		}
		page, err := pgx.CollectRows(rows, scanWrappedKey)
		if err != nil {
			return n, fmt.Errorf("rewrap: %w", err)
		}
		if len(page) == 0 {
			return n, nil
		}
		for _, r := range page {
			secret, err := k.master.Unwrap(ctx, r.master, r.wrapped, r.id.Bytes[:])
			if err != nil {
				return n, fmt.Errorf("rewrap data key %s: %w", r.id.Bytes, err)
			}
			master, wrapped, err := k.master.Wrap(ctx, secret, r.id.Bytes[:])
			if err != nil {
				return n, fmt.Errorf("rewrap data key %s: %w", r.id.Bytes, err)
			}
			if master != current {
				return n, fmt.Errorf("rewrap: the master key wraps with %q, not %q", master, current)
			}
			tag, err := k.db.Exec(ctx, `UPDATE customer_keys SET master_key_id = $2, wrapped = $3
				WHERE key_id = $1 AND master_key_id = $4 AND wrapped = $5`, r.id, master, wrapped, r.master, r.wrapped)
			if err != nil {
				return n, fmt.Errorf("rewrap data key %s: %w", r.id.Bytes, err)
			}
			n += int(tag.RowsAffected())
		}
	}
}
