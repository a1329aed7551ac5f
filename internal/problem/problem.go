// Package problem is the one place where an error a handler returns becomes
// its RFC 9457 problem (httpx.Problem): status, stable type, the fields at
// fault. The command API (commands/httpapi), the query API (queries) and the
// operator's view (internal/ops) all answer their errors through Write.
//
// An error that already is an *httpx.Problem (a port's own refusal of a
// request: a bad parameter, an order that does not exist at ?as_of) is
// answered as it is; the application's errors (package commands) get their
// statuses here; a database that cannot answer is a 503 with Retry-After, a
// cancelled request too; anything else is a 500 whose details go to the log
// under the request id, never to the client.
package problem

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/pg"
)

// Write answers err as its problem; log (nil: none) gets the errors that
// are the server's.
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	httpx.WriteProblem(w, r, For(r.Context(), log, err))
}

// For is err's problem; log (nil: none) gets the errors that are the
// server's.
func For(ctx context.Context, log *slog.Logger, err error) *httpx.Problem {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		known      *httpx.Problem
		validation *commands.ValidationError
		rule       *commands.RuleError
		stale      *commands.PreconditionFailedError
		conflict   *commands.ConflictError
	)
	switch {
	case errors.As(err, &known):
		return known
	case errors.As(err, &validation):
		p := httpx.NewProblem(http.StatusUnprocessableEntity, "validation", "Invalid command", "one or more fields are invalid")
		for _, f := range validation.Fields {
			p.Errors = append(p.Errors, httpx.FieldError{Field: f.Field, Message: f.Message})
		}
		return p
	case errors.As(err, &rule):
		p := httpx.NewProblem(http.StatusConflict, "rule-violation", "Command not allowed in the order's state", rule.Detail)
		p.Rule = rule.Rule
		return p
	case errors.As(err, &stale):
		p := httpx.NewProblem(http.StatusPreconditionFailed, "stale-version", "The order has changed",
			"If-Match names a version that is no longer current; reload the order and decide again")
		p.CurrentVersion = &stale.Current
		return p
	case errors.As(err, &conflict):
		p := httpx.NewProblem(http.StatusConflict, "concurrency-conflict", "Concurrent changes",
			"the order kept changing while this command was decided; retry")
		p.CurrentVersion = &conflict.Current
		return p
	case errors.Is(err, commands.ErrOrderNotFound):
		return httpx.OrderNotFound()
	case errors.Is(err, commands.ErrItemNotFound):
		return httpx.NewProblem(http.StatusNotFound, "item-not-found", "Item not found", err.Error())
	case errors.Is(err, commands.ErrOrderExists):
		return httpx.NewProblem(http.StatusConflict, "order-exists", "Order exists", "an order with this id already exists")
	case errors.Is(err, commands.ErrIdempotencyKeyReused):
		return httpx.NewProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused",
			"this Idempotency-Key was first used with a different request; use a new key for a new request")
	case errors.Is(err, eventstore.ErrNoPartition):
		log.ErrorContext(ctx, "append refused: partition missing", "err", err, "request_id", httpx.RequestID(ctx))
		return httpx.Unavailable("Temporarily unavailable", "the event store is not ready for this order; retry later")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return httpx.Unavailable("Request not completed",
			"the request was cancelled or timed out; retry (a command with the same Idempotency-Key is safe to retry)")
	case pg.Unavailable(err):
		// The database is down or restarting: a command may or may not
		// have committed (a connection lost at COMMIT), which is what the
		// Idempotency-Key is for.
		log.WarnContext(ctx, "request not completed: database unavailable", "err", err, "request_id", httpx.RequestID(ctx))
		return httpx.Unavailable("Database unavailable",
			"the database cannot be reached right now; retry (a command with the same Idempotency-Key is safe to retry)")
	default:
		log.ErrorContext(ctx, "request failed", "err", err, "request_id", httpx.RequestID(ctx))
		return httpx.NewProblem(http.StatusInternalServerError, "internal", "Internal error",
			"the server failed; the request id identifies it in the logs")
	}
}
