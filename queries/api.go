package queries

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/internal/problem"
	"github.com/orderflow/orderflow/order"
)

// Options configures the query API. The zero value is ready to use.
type Options struct {
	// ConsistencyWait bounds how long a request carrying a Consistency-Token
	// waits for the projection to catch up before answering stale. Zero means
	// 2s.
	ConsistencyWait time.Duration
	// ConsistencyPoll is the interval between two looks at the projection's
	// versions row while waiting. Zero means 15ms: about one projector
	// transaction, and a primary-key probe per tick is negligible load.
	ConsistencyPoll time.Duration
	// Logger gets the errors that are the server's (a failed read). Nil
	// means none are logged.
	Logger *slog.Logger
	// Keys opens personal data (internal/pii). Nil: it is shown sealed, as
	// stored.
	Keys *pii.Keys
}

func (o *Options) setDefaults() {
	if o.ConsistencyWait == 0 {
		o.ConsistencyWait = 2 * time.Second
	}
	if o.ConsistencyPoll == 0 {
		o.ConsistencyPoll = 15 * time.Millisecond
	}
}

// Validate reports options that cannot work. Zero values are valid (they
// mean the defaults).
func (o Options) Validate() error {
	var errs []error
	if o.ConsistencyWait < 0 {
		errs = append(errs, fmt.Errorf("ConsistencyWait %s is negative", o.ConsistencyWait))
	}
	if o.ConsistencyPoll < 0 {
		errs = append(errs, fmt.Errorf("ConsistencyPoll %s is negative", o.ConsistencyPoll))
	}
	return errors.Join(errs...)
}

// API serves the read models.
type API struct {
	pool     *pgxpool.Pool
	store    *eventstore.Store
	registry *order.Registry
	opts     Options
}

// NewAPI returns the query API over the read models in pool (the query
// role's) and the event store, or the reason opts cannot work.
func NewAPI(pool *pgxpool.Pool, store *eventstore.Store, registry *order.Registry, opts Options) (*API, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("queries: %w", err)
	}
	opts.setDefaults()
	return &API{pool: pool, store: store, registry: registry, opts: opts}, nil
}

// Mux is what Register needs of a router; *http.ServeMux is one.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register adds the query routes to mux. They share /v1/orders with the
// command API, which registers only non-GET methods there.
func (a *API) Register(mux Mux) {
	mux.HandleFunc("GET /v1/orders", a.handle(a.listOrders))
	mux.HandleFunc("GET /v1/orders/{id}", a.handle(a.getOrder))
	mux.HandleFunc("GET /v1/orders/{id}/history", a.handle(a.history))
	mux.HandleFunc("GET /v1/orders/{id}/events", a.handle(a.events))
	mux.HandleFunc("GET /v1/customers/{id}/stats", a.handle(a.customerStats))
	mux.HandleFunc("GET /v1/stats/sales", a.handle(a.sales))
	mux.HandleFunc("GET /v1/stats/status", a.handle(a.statusCounts))
}

// handle turns a handler that returns an error into an http handler that
// writes the error as its problem (internal/problem); a handler writes only on
// success, so nothing is half-written when an error comes back.
func (a *API) handle(h func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			problem.Write(w, r, a.opts.Logger, err)
		}
	}
}

// orderStream names an order's stream in the event store; reads go by id
// alone, so the type only labels.
func orderStream(id [16]byte) eventstore.Stream {
	return eventstore.Stream{ID: id, Type: order.StreamType}
}
