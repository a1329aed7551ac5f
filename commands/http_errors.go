package commands

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/pg"
)

// writeError maps every error of the command API to its problem: the one
// place where errors become HTTP statuses.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	httpx.WriteProblem(w, r, problemFor(r.Context(), err))
}

func problemFor(ctx context.Context, err error) *httpx.Problem {
	var (
		validation *ValidationError
		rule       *RuleError
		stale      *PreconditionFailedError
		conflict   *ConflictError
	)
	switch {
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
	case errors.Is(err, ErrOrderNotFound):
		return httpx.OrderNotFound()
	case errors.Is(err, ErrItemNotFound):
		return httpx.NewProblem(http.StatusNotFound, "item-not-found", "Item not found", err.Error())
	case errors.Is(err, ErrOrderExists):
		return httpx.NewProblem(http.StatusConflict, "order-exists", "Order exists", "an order with this id already exists")
	case errors.Is(err, ErrIdempotencyKeyReused):
		return httpx.NewProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused",
			"this Idempotency-Key was first used with a different request; use a new key for a new request")
	case errors.Is(err, eventstore.ErrNoPartition):
		slog.ErrorContext(ctx, "append refused: partition missing", "err", err, "request_id", httpx.RequestID(ctx))
		return httpx.Unavailable("Temporarily unavailable", "the event store is not ready for this order; retry later")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return httpx.Unavailable("Request not completed", "the request was cancelled or timed out; retrying with the same Idempotency-Key is safe")
	case pg.Unavailable(err):
		// The database is down or restarting: the command may or may not
		// have committed (a connection lost at COMMIT), which is what the
		// Idempotency-Key is for.
		slog.WarnContext(ctx, "command not completed: database unavailable", "err", err, "request_id", httpx.RequestID(ctx))
		return httpx.Unavailable("Database unavailable", "the event store cannot be reached right now; retrying with the same Idempotency-Key is safe")
	default:
		slog.ErrorContext(ctx, "command failed", "err", err, "request_id", httpx.RequestID(ctx))
		return httpx.NewProblem(http.StatusInternalServerError, "internal", "Internal error",
			"the server failed; the request id identifies it in the logs")
	}
}
