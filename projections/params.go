package projections

import (
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Column values that reach pgx without an allocation each.
//
// A live batch passes every column as one array parameter (see column in
// sql.go), and pgx encodes an array element by element through an
// interface: an int64, a string or a time.Time put in an interface is
// copied to the heap, which for one batch of 1000 order summaries was 22 000
// allocations just to send its arrays. A pointer in an interface costs
// nothing. So a column is an arr of a type whose pointer implements pgx's
// valuer interface (these four, or pgx's own pgtype values), arr hands pgx a
// pointer to each element, and a rebuild's COPY gets pointers too.

type (
	bigint  int64
	integer int32
	text    string
	tstz    time.Time
)

// Int64Value implements pgtype.Int64Valuer.
func (v *bigint) Int64Value() (pgtype.Int8, error) {
	return pgtype.Int8{Int64: int64(*v), Valid: true}, nil
}

// Int64Value implements pgtype.Int64Valuer.
func (v *integer) Int64Value() (pgtype.Int8, error) {
	return pgtype.Int8{Int64: int64(*v), Valid: true}, nil
}

// TextValue implements pgtype.TextValuer.
func (v *text) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: string(*v), Valid: true}, nil
}

// TimestamptzValue implements pgtype.TimestamptzValuer.
func (v *tstz) TimestamptzValue() (pgtype.Timestamptz, error) {
	return pgtype.Timestamptz{Time: time.Time(*v), Valid: true}, nil
}

// arr is a column passed as an array parameter (pgtype.ArrayGetter): pgx
// gets a pointer to each element.
type arr[T any] []T

// Dimensions implements pgtype.ArrayGetter.
func (a arr[T]) Dimensions() []pgtype.ArrayDimension {
	if a == nil {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(len(a)), LowerBound: 1}} // #nosec G115 -- a batch holds at most a few thousand rows
}

// Index implements pgtype.ArrayGetter.
func (a arr[T]) Index(i int) any { return &a[i] }

// IndexType implements pgtype.ArrayGetter.
func (a arr[T]) IndexType() any { return new(T) }
