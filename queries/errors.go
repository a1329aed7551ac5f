package queries

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/orderflow/orderflow/internal/httpx"
)

// The query API's own refusals are problems from the start (the one mapping
// of every other error is internal/problem's): each helper returns a fresh
// one, since writing a problem fills in its instance.

func orderNotFound() error { return httpx.OrderNotFound() }

func customerNotFound() error {
	return httpx.NewProblem(http.StatusNotFound, "customer-not-found", "Customer not found", "no order of this customer has been projected")
}

// notYet is an ?as_of that names a moment before the order existed or a
// version it has not reached; current is the order's current version, when
// as_of was a version.
func notYet(detail string, current *int64) error {
	p := httpx.NewProblem(http.StatusNotFound, "order-not-found", "Order not found at as_of", detail)
	p.CurrentVersion = current
	return p
}

// badRequest is a request the server will not run: a bad path segment,
// query parameter or header. fields name the offending parameters.
func badRequest(slug, title, detail string, fields []httpx.FieldError) error {
	p := httpx.NewProblem(http.StatusBadRequest, slug, title, detail)
	p.Errors = fields
	return p
}

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
	return badRequest("invalid-parameter", "Invalid query parameter", "check "+strings.Join(names, ", "), p)
}

func invalidOrderID(id string) error { return httpx.InvalidOrderID(id) }
