package pg

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err says the database could not be reached
// or went away — it is down, restarting, refusing connections, or the
// connection broke — rather than that the statement was wrong. Callers
// answer such errors with "retry later" (HTTP 503, a consumer's redelivery)
// instead of treating them as bugs or poison.
//
// The classes: a failed connect (pgconn.ConnectError: refused, reset, the
// server starting up or shutting down), SQLSTATE class 08 (connection
// exception), 57P01–57P03 (the server shut down or crashed, or cannot take
// connections yet), 53300 (too many connections), and a connection that
// broke under a statement (closed, EOF, a network error).
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var (
		connect *pgconn.ConnectError
		pgErr   *pgconn.PgError
		netErr  net.Error
	)
	switch {
	case errors.As(err, &connect):
		return true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false // the caller gave up (context.DeadlineExceeded is also a net.Error)
	case errors.As(err, &pgErr):
		return strings.HasPrefix(pgErr.Code, "08") ||
			pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" || pgErr.Code == "53300"
	case errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &netErr):
		return true
	}
	return false
}

// Unanswered reports whether err says the database did not answer: it is
// Unavailable, or the call ran out of time waiting for it (a server that
// hangs, or that the network cut off, refuses nothing: its callers time
// out). A circuit breaker counts these against the database. A statement
// timeout is not one: the server answered it.
func Unanswered(err error) bool {
	return Unavailable(err) || errors.Is(err, context.DeadlineExceeded)
}
