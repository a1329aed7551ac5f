package projections

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// Transient reports whether err, from ApplyBatch, says nothing about the
// batch's events: ctx ended, the database could not be reached or went
// away, is restarting or out of resources, or picked this transaction as a
// deadlock or serialization victim. Apply such a batch again later, as it
// is. Any other error may be an event's fault (a value a column rejects, a
// bug an event triggers): retry the events one at a time, so that only the
// bad one ends in the dead-letter queue.
func Transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errVersionRowGone) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"40", // transaction rollback: deadlock, serialization failure
			"53", // insufficient resources: disk full, out of memory, too many connections
			"58": // system error: I/O
			return true
		case "57": // operator intervention: shutdown, crash recovery, cannot connect now...
			// ...but 57014, a statement cut short by statement_timeout,
			// would be cut short again: alone, the events may fit.
			return pgErr.Code != "57014"
		}
		return false
	}
	// Not an error the server sent: the connection failed or was lost.
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
