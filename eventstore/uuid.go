package eventstore

import (
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"
)

// ULIDs are stored as uuid: the same 16 bytes, and uuid ordering in
// PostgreSQL is byte order, so ULID time order is index order.

func uuidOf(id ulid.ULID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }
