package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"
)

// RequestKey makes an append happen at most once per key, also when its
// retries carry new event IDs (a client's retry of a command is decided
// again, into new events). The first append with a key stores the key, its
// fingerprint and the append's result in the append's own transaction;
// later appends with the key append nothing: with the same fingerprint they
// get the first result back (Replayed, and the StreamID it went to), with
// another they fail with ErrKeyReused. A key is decided before anything else
// about its request, and an append that fails stores no key.
//
// Keys ride group commit like any append: concurrent appends sharing a key,
// in one batch, in concurrent batches or on several processes, are
// serialized by a lock on the key, and exactly one of them appends. See
// DESIGN.md.
type RequestKey struct {
	// Scope is whose key it is (a client, a principal): keys of different
	// scopes never meet. At most MaxKeyLen bytes; may be empty.
	Scope string
	// Key is unique within the scope: 1 to MaxKeyLen bytes.
	Key string
	// Fingerprint identifies the request the key stands for (say, a hash of
	// it): at most MaxFingerprintLen bytes.
	Fingerprint []byte
}

// Bounds of a RequestKey's fields.
const (
	MaxKeyLen         = 255
	MaxFingerprintLen = 64
)

// ErrKeyReused means the append's key was first used with another
// fingerprint: nothing was appended.
var ErrKeyReused = errors.New("request key already used with another fingerprint")

// normalize checks k and returns it with a non-nil Fingerprint (a nil slice
// would be sent as NULL).
func (k RequestKey) normalize() (RequestKey, error) {
	for _, f := range []struct{ name, v string }{{"scope", k.Scope}, {"key", k.Key}} {
		if len(f.v) > MaxKeyLen {
			return k, fmt.Errorf("append: request key %s is %d bytes, at most %d", f.name, len(f.v), MaxKeyLen)
		}
		// Text columns refuse both, and the statement would fail the batch.
		if !utf8.ValidString(f.v) || strings.IndexByte(f.v, 0) >= 0 {
			return k, fmt.Errorf("append: request key %s must be UTF-8 without NUL", f.name)
		}
	}
	if k.Key == "" {
		return k, errors.New("append: request key is empty")
	}
	if len(k.Fingerprint) > MaxFingerprintLen {
		return k, fmt.Errorf("append: request key fingerprint is %d bytes, at most %d", len(k.Fingerprint), MaxFingerprintLen)
	}
	if k.Fingerprint == nil {
		k.Fingerprint = []byte{}
	}
	return k, nil
}

// KeyedResult is the outcome of an append with a RequestKey: where its
// events are. StreamID is the request's stream, except when Replayed: then
// it is the stream of the key's first append (which, for a request that
// creates a stream under a fresh id, is another one).
type KeyedResult struct {
	AppendResult
	StreamID ulid.ULID
}

// AppendKeyed is Append with a request key (see RequestKey): group commit,
// the key stored with the events in one transaction. Errors are Append's,
// plus ErrKeyReused. An error that is not an outcome leaves the append's
// fate unknown, as for Append: retrying with the same key is safe.
func (s *Store) AppendKeyed(ctx context.Context, key RequestKey, stream Stream, expected ExpectedVersion, events []EventData) (KeyedResult, error) {
	req, err := encode(stream, expected, events, &key)
	if err != nil {
		return KeyedResult{}, err
	}
	var r BatchResult
	if s.gc != nil {
		r = s.gc.append(ctx, req)
	} else {
		r = s.appendAlone(ctx, req)
	}
	if r.Err != nil {
		return KeyedResult{}, r.Err
	}
	return KeyedResult{AppendResult: r.AppendResult, StreamID: r.StreamID}, nil
}

// appendAlone runs one request as its own batch in the caller's goroutine
// (group commit disabled).
func (s *Store) appendAlone(ctx context.Context, req encoded) BatchResult {
	results := make([]BatchResult, 1)
	b := newBatch(1, len(req.events))
	b.add(0, &req)
	if err := b.exec(ctx, s.db, results); err != nil {
		return BatchResult{Err: fmt.Errorf("append to %s: %w", req.stream.ID, err)}
	}
	return results[0]
}

// LookupKey returns what the first append with key's scope and key
// answered: found is false if none is stored; with another fingerprint than
// key's, the error is ErrKeyReused. It is a plain read: a keyed append in
// flight may store the key right after it.
func (s *Store) LookupKey(ctx context.Context, key RequestKey) (res KeyedResult, found bool, err error) {
	var (
		fp     []byte
		stream pgtype.UUID
	)
	err = s.db.QueryRow(ctx, `SELECT fingerprint, stream_id, from_version, to_version, position
		FROM append_keys WHERE scope = $1 AND key = $2`, key.Scope, key.Key).
		Scan(&fp, &stream, &res.FromVersion, &res.ToVersion, &res.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return KeyedResult{}, false, nil
	}
	if err != nil {
		return KeyedResult{}, false, fmt.Errorf("look up request key: %w", err)
	}
	if string(fp) != string(key.Fingerprint) {
		return KeyedResult{}, true, ErrKeyReused
	}
	res.StreamID, res.Replayed = stream.Bytes, true
	return res, true, nil
}

// ExpireKeys deletes the keys stored before before, a thousand at a time so
// that no long transaction holds locks, and returns how many it deleted. An
// expired key no longer dedupes: a later append with it appends again.
func (s *Store) ExpireKeys(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.db.Exec(ctx, `DELETE FROM append_keys WHERE (scope, key) IN (
			SELECT scope, key FROM append_keys WHERE created_at < $1 LIMIT 1000)`, before)
		if err != nil {
			return total, fmt.Errorf("expire request keys: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 1000 {
			return total, nil
		}
	}
}
