package eventstore

import (
	"errors"
	"fmt"
	"strconv"
)

// ExpectedVersion is an append's optimistic-concurrency expectation.
// The zero value is Any.
type ExpectedVersion struct {
	kind    expectKind
	version int64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectExact
)

// Any appends whatever the stream's current version is.
func Any() ExpectedVersion { return ExpectedVersion{} }

// NoStream appends only if the stream has no events yet.
func NoStream() ExpectedVersion { return ExpectedVersion{kind: expectNoStream} }

// Exact appends only if the stream's current version is v (v ≥ 1).
func Exact(v int64) ExpectedVersion { return ExpectedVersion{kind: expectExact, version: v} }

func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectNoStream:
		return "no-stream"
	case expectExact:
		return strconv.FormatInt(e.version, 10)
	default:
		return "any"
	}
}

// ErrWrongExpectedVersion is the sentinel callers branch on; the concrete
// error is a *WrongExpectedVersionError carrying the actual version.
var ErrWrongExpectedVersion = errors.New("wrong expected version")

// WrongExpectedVersionError says what was expected and what the stream is at.
type WrongExpectedVersionError struct {
	StreamID string
	Expected ExpectedVersion
	Actual   int64
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("stream %s: expected version %s, actual %d", e.StreamID, e.Expected, e.Actual)
}

func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

var (
	// ErrNoEvents is returned by Append when there is nothing to append.
	ErrNoEvents = errors.New("no events to append")
	// ErrEventIDConflict means some, but not all, of an append's event IDs are
	// already stored, or they are stored in another order: not a retry of the
	// same append.
	ErrEventIDConflict = errors.New("event ids partly stored: not a retry of the same append")
	// ErrNoPartition means the stream's month has no partition yet.
	ErrNoPartition = errors.New("no partition for the stream's month")
	// ErrStreamTypeMismatch means the stream exists with another type.
	ErrStreamTypeMismatch = errors.New("stream exists with another type")
)
