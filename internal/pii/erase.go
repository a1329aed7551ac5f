package pii

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"
)

// RecordOrder notes that order holds the customer's personal data, so that
// an erasure can append PersonalDataErased to it. It runs after the order's
// creation committed: an order whose note was lost in a crash is still
// erased (its values name the customer's key), it only lacks the event.
func (k *Keys) RecordOrder(ctx context.Context, customerID string, orderID ulid.ULID) error {
	_, err := k.db.Exec(ctx, `INSERT INTO customer_orders (order_id, customer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		pgtype.UUID{Bytes: orderID, Valid: true}, customerID)
	if err != nil {
		return fmt.Errorf("record order %s: %w", orderID, err)
	}
	return nil
}

// Erase destroys the customer's data key: from its commit on, no reader in
// any process can open the customer's sealed values. record runs in the
// same transaction (the audit entry commits with the erasure or not at
// all) and is told whether there was a key.
func (k *Keys) Erase(ctx context.Context, customerID string, record func(ctx context.Context, tx pgx.Tx, destroyed bool) error) (bool, error) {
	var destroyed bool
	err := pgx.BeginFunc(ctx, k.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM customer_keys WHERE customer_id = $1`, customerID)
		if err != nil {
			return err
		}
		destroyed = tag.RowsAffected() > 0
		return record(ctx, tx, destroyed)
	})
	if err != nil {
		return false, fmt.Errorf("erase data key: %w", err)
	}
	return destroyed, nil
}

// Orders returns up to limit of the orders RecordOrder noted for the
// customer and ForgetOrders has not yet removed.
func (k *Keys) Orders(ctx context.Context, customerID string, limit int) ([]ulid.ULID, error) {
	rows, err := k.db.Query(ctx, `SELECT order_id FROM customer_orders WHERE customer_id = $1 ORDER BY order_id LIMIT $2`, customerID, limit)
	if err != nil {
		return nil, fmt.Errorf("orders of a customer: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ulid.ULID, error) {
		var id pgtype.UUID
		return id.Bytes, r.Scan(&id)
	})
}

// ForgetOrders removes orders from the customer's list once their erasure
// is recorded.
func (k *Keys) ForgetOrders(ctx context.Context, ids []ulid.ULID) error {
	uuids := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		uuids[i] = pgtype.UUID{Bytes: id, Valid: true}
	}
	if _, err := k.db.Exec(ctx, `DELETE FROM customer_orders WHERE order_id = ANY($1)`, uuids); err != nil {
		return fmt.Errorf("forget erased orders: %w", err)
	}
	return nil
}
