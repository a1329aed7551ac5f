package pii

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/order"
)

// DB is what Keys needs of a pool (or a transaction).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Keys is the store of customers' data keys (table customer_keys), wrapped
// by a MasterKey. The command role creates and erases keys; the query role
// only opens values (DESIGN.md, Least privilege).
type Keys struct {
	db     DB
	master MasterKey
}

// NewKeys returns the data keys in db, wrapped by master.
func NewKeys(db DB, master MasterKey) *Keys { return &Keys{db: db, master: master} }

// ForCustomer returns the customer's data key, made (and stored wrapped) on
// first use. Two processes making one at once both read the one stored.
func (k *Keys) ForCustomer(ctx context.Context, customerID string) (DataKey, error) {
	for range 2 {
		var (
			id      pgtype.UUID
			master  string
			wrapped []byte
		)
		err := k.db.QueryRow(ctx, `SELECT key_id, master_key_id, wrapped FROM customer_keys WHERE customer_id = $1`, customerID).
			Scan(&id, &master, &wrapped)
		if err == nil {
			return k.unwrap(ctx, id.Bytes, master, wrapped)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return DataKey{}, fmt.Errorf("read data key: %w", err)
		}
		if err := k.create(ctx, customerID); err != nil {
			return DataKey{}, err
		}
	}
	return DataKey{}, errors.New("data key: made and not found (erased meanwhile?)")
}

func (k *Keys) create(ctx context.Context, customerID string) error {
	id, secret := ulid.Make(), make([]byte, dataKeyBytes)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("make data key: %w", err)
	}
	master, wrapped, err := k.master.Wrap(ctx, secret, id[:])
	if err != nil {
		return fmt.Errorf("wrap data key: %w", err)
	}
	_, err = k.db.Exec(ctx, `INSERT INTO customer_keys (key_id, customer_id, master_key_id, wrapped) VALUES ($1, $2, $3, $4)
		ON CONFLICT (customer_id) DO NOTHING`, pgtype.UUID{Bytes: id, Valid: true}, customerID, master, wrapped)
	if err != nil {
		return fmt.Errorf("store data key: %w", err)
	}
	return nil
}

func (k *Keys) unwrap(ctx context.Context, id ulid.ULID, master string, wrapped []byte) (DataKey, error) {
	secret, err := k.master.Unwrap(ctx, master, wrapped, id[:])
	if err != nil {
		return DataKey{}, fmt.Errorf("unwrap data key %s: %w", id, err)
	}
	aead, err := newAEAD(secret)
	if err != nil {
		return DataKey{}, err
	}
	return DataKey{ID: id, aead: aead}, nil
}

// Value is one personal field to open in place: Text holds the sealed value
// and is replaced by the plaintext, or by order.Erased when its key is gone.
// A value that is not sealed ("", or already Erased) is left as it is.
type Value struct {
	Stream ulid.ULID
	Field  string
	Text   *string
}

// Open opens values with one query for their keys.
func (k *Keys) Open(ctx context.Context, values ...Value) error {
	ids := make([]pgtype.UUID, 0, len(values))
	for _, v := range values {
		if id, ok := keyIDOf(*v.Text); ok {
			ids = append(ids, pgtype.UUID{Bytes: id, Valid: true})
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := k.db.Query(ctx, `SELECT key_id, master_key_id, wrapped FROM customer_keys WHERE key_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("read data keys: %w", err)
	}
	found, err := pgx.CollectRows(rows, scanWrappedKey)
	if err != nil {
		return fmt.Errorf("read data keys: %w", err)
	}
	keys := make(map[ulid.ULID]DataKey, len(found))
	for _, r := range found {
		if keys[r.id.Bytes], err = k.unwrap(ctx, r.id.Bytes, r.master, r.wrapped); err != nil {
			return err
		}
	}
	for _, v := range values {
		id, ok := keyIDOf(*v.Text)
		if !ok {
			continue
		}
		dk, ok := keys[id]
		if !ok {
			*v.Text = order.Erased
			continue
		}
		pt, err := dk.open(v.Stream, v.Field, *v.Text)
		if err != nil {
			return fmt.Errorf("open %s of %s: %w", v.Field, v.Stream, err)
		}
		*v.Text = pt
	}
	return nil
}

// OpenJSON returns a JSON object (an event's data, an order's state) with
// its personal fields (order.PersonalFields, at the top level) opened. Data
// without a sealed value is returned as it is, without being parsed; the
// rest is kept byte for byte: only the sealed strings are replaced.
func (k *Keys) OpenJSON(ctx context.Context, stream ulid.ULID, data json.RawMessage) (json.RawMessage, error) {
	if !bytes.Contains(data, []byte(sealedPrefix)) {
		return data, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return data, nil // not an object: nothing of ours is sealed in it
	}
	var (
		values []Value
		sealed []string
	)
	for _, f := range order.PersonalFields {
		var s string
		if json.Unmarshal(obj[f], &s) != nil || !IsSealed(s) {
			continue
		}
		sealed = append(sealed, s)
		values = append(values, Value{Stream: stream, Field: f, Text: new(string)})
		*values[len(values)-1].Text = s
	}
	if err := k.Open(ctx, values...); err != nil {
		return nil, err
	}
	out := data
	for i, v := range values {
		// A sealed value is base64url between ASCII separators: its JSON
		// literal is the quoted string, with nothing escaped.
		plain, err := json.Marshal(*v.Text)
		if err != nil {
			return nil, err
		}
		out = bytes.Replace(out, []byte(`"`+sealed[i]+`"`), plain, 1)
	}
	return out, nil
}

// wrappedKey is a row of customer_keys as read: the data key's id, the
// master key that wrapped it and the wrapped bytes.
type wrappedKey struct {
	id      pgtype.UUID
	master  string
	wrapped []byte
}

// scanWrappedKey scans key_id, master_key_id, wrapped.
func scanWrappedKey(r pgx.CollectableRow) (wrappedKey, error) {
	var x wrappedKey
	return x, r.Scan(&x.id, &x.master, &x.wrapped)
}
