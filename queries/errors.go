package queries

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/pg"
)

// Sentinels the handlers return; problemFor gives each its status.
var (
	errOrderNotFound    = errors.New("order not found")
	errCustomerNotFound = errors.New("customer has no orders")
)

// notYetError is an ?as_of that names a moment before the order existed or
// a version it has not reached.
type notYetError struct {
	detail  string
	current *int64 // the order's current version, when as_of was a version
}

func (e *notYetError) Error() string { return e.detail }

// badRequestError is a request the server will not run: a bad path segment,
// query parameter or header. Fields name the offending parameters.
type badRequestError struct {
	slug, title, detail string
	fields              []httpx.FieldError
}

func (e *badRequestError) Error() string { return e.title + ": " + e.detail }

// paramErrors collects parameter problems so that one response lists them
// all, not only the first.
type paramErrors []httpx.FieldError

func (p *paramErrors) add(field, format string, args ...any) {
	*p = append(*p, httpx.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was added.
func (p paramErrors) err() error {
	if len(p) == 0 {
		return nil
	}
	names := make([]string, 0, len(p))
	for _, f := range p {
		names = append(names, f.Field)
	}
	return &badRequestError{slug: "invalid-parameter", title: "Invalid query parameter",
		detail: "check " + strings.Join(names, ", "), fields: p}
}

func invalidOrderID(id string) error { return httpx.InvalidOrderID(id) }

// writeError writes err as its problem.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	httpx.WriteProblem(w, r, problemFor(r.Context(), err))
}

// problemFor is the one place where the query API's errors become HTTP
// statuses and problem types.
func problemFor(ctx context.Context, err error) *httpx.Problem {
	var (
		ready  *httpx.Problem
		bad    *badRequestError
		notYet *notYetError
	)
	switch {
	case errors.As(err, &ready):
		return ready
	case errors.As(err, &bad):
		p := httpx.NewProblem(http.StatusBadRequest, bad.slug, bad.title, bad.detail)
		p.Errors = bad.fields
		return p
	case errors.Is(err, errOrderNotFound):
		return httpx.OrderNotFound()
	case errors.As(err, &notYet):
		p := httpx.NewProblem(http.StatusNotFound, "order-not-found", "Order not found at as_of", notYet.detail)
		p.CurrentVersion = notYet.current
		return p
	case errors.Is(err, errCustomerNotFound):
		return httpx.NewProblem(http.StatusNotFound, "customer-not-found", "Customer not found", "no order of this customer has been projected")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return httpx.Unavailable("Request not completed", "the request was cancelled or timed out; retry")
	case pg.Unavailable(err):
		slog.WarnContext(ctx, "query not completed: database unavailable", "err", err, "request_id", httpx.RequestID(ctx))
		return httpx.Unavailable("Database unavailable", "the read models cannot be reached right now; retry")
	default:
		slog.ErrorContext(ctx, "query failed", "err", err, "request_id", httpx.RequestID(ctx))
		return httpx.NewProblem(http.StatusInternalServerError, "internal", "Internal error",
			"the server failed; the request id identifies it in the logs")
	}
}
