package eventstore

import "github.com/jackc/pgx/v5/pgtype"

// Array arguments of events_append_batch whose elements pgx encodes through
// pointers into the slice. pgx's own wrappers for []string, []pgtype.UUID
// and [][]byte box every element into an interface (the latter two through
// reflection): an allocation per string, id and fingerprint of every batch,
// several per request. A pointer boxes for free, and each element type
// below hands the codec its value through the codec's Valuer interface.
type (
	textArray  []string
	uuidArray  []pgtype.UUID
	bytesArray [][]byte

	textElem  string
	bytesElem []byte
)

func (e *textElem) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: string(*e), Valid: true}, nil
}

// BytesValue of a nil element is nil: SQL NULL.
func (e *bytesElem) BytesValue() ([]byte, error) { return *e, nil }

func dimensions(n int, isNil bool) []pgtype.ArrayDimension {
	if isNil {
		return nil // SQL NULL
	}
	return []pgtype.ArrayDimension{{Length: int32(n), LowerBound: 1}} // #nosec G115 -- a batch's arrays hold at most MaxBatch requests of MaxAppend events
}

func (a textArray) Dimensions() []pgtype.ArrayDimension { return dimensions(len(a), a == nil) }
func (a textArray) Index(i int) any                     { return (*textElem)(&a[i]) }
func (a textArray) IndexType() any                      { return new(textElem) }

// *pgtype.UUID is a pgtype.UUIDValuer.
func (a uuidArray) Dimensions() []pgtype.ArrayDimension { return dimensions(len(a), a == nil) }
func (a uuidArray) Index(i int) any                     { return &a[i] }
func (a uuidArray) IndexType() any                      { return new(pgtype.UUID) }

func (a bytesArray) Dimensions() []pgtype.ArrayDimension { return dimensions(len(a), a == nil) }
func (a bytesArray) Index(i int) any                     { return (*bytesElem)(&a[i]) }
func (a bytesArray) IndexType() any                      { return new(bytesElem) }
