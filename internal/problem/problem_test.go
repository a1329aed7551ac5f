package problem_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/problem"
)

// Every kind of error the ports return gets its status and stable type,
// wrapped or not; what is unknown is the server's failure, never a 4xx.
func TestEveryErrorGetsItsProblem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		status int
		slug   string
	}{
		{httpx.OrderNotFound(), 404, "order-not-found"},
		{fmt.Errorf("wrapped: %w", httpx.InvalidOrderID("x")), 400, "invalid-order-id"},
		{&commands.ValidationError{Fields: []commands.FieldError{{Field: "currency", Message: "is required"}}}, 422, "validation"},
		{&commands.RuleError{Rule: commands.RulePlaceRequiresItems}, 409, "rule-violation"},
		{&commands.PreconditionFailedError{Current: 3}, 412, "stale-version"},
		{&commands.ConflictError{Current: 3}, 409, "concurrency-conflict"},
		{fmt.Errorf("load: %w", commands.ErrOrderNotFound), 404, "order-not-found"},
		{commands.ErrItemNotFound, 404, "item-not-found"},
		{commands.ErrOrderExists, 409, "order-exists"},
		{commands.ErrIdempotencyKeyReused, 422, "idempotency-key-reused"},
		{eventstore.ErrNoPartition, 503, "unavailable"},
		{context.Canceled, 503, "unavailable"},
		{errors.New("something broke"), 500, "internal"},
	} {
		p := problem.For(context.Background(), nil, tc.err)
		if p.Status != tc.status || p.Type != httpx.ProblemTypeBase+tc.slug {
			t.Errorf("%v: %d %s, want %d %s", tc.err, p.Status, p.Type, tc.status, tc.slug)
		}
		if p.Status == http.StatusServiceUnavailable && p.RetryAfter == 0 {
			t.Errorf("%v: a 503 without Retry-After", tc.err)
		}
	}
}
