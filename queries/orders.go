package queries

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/order"
)

// getOrder serves GET /v1/orders/{id}[?as_of=<RFC 3339 time | version>].
func (a *API) getOrder(w http.ResponseWriter, r *http.Request) error {
	id, err := pathOrderID(r)
	if err != nil {
		return err
	}
	q := parseQuery(r, "as_of")
	at := parseAsOf(q)
	tok, tokErr := parseToken(r)
	if err := q.err(); err != nil {
		return err
	}
	if tokErr != nil {
		return tokErr
	}

	var o Order
	if at != nil {
		// The store is the truth and a token is handed out only after its
		// events committed, so an as_of read is fresh without waiting.
		if tok != nil {
			w.Header().Set("Consistency", fresh)
		}
		if o, err = a.orderAsOf(r.Context(), id, *at); err != nil {
			return err
		}
	} else {
		if err := a.await(w, r, summaryVersions, tok); err != nil {
			return err
		}
		if o, err = a.readOrder(r.Context(), id); err != nil {
			return err
		}
	}
	page := []Summary{o.Summary}
	if err := a.open(r.Context(), page...); err != nil {
		return err
	}
	o.Summary = page[0]
	etag := strconv.Quote(strconv.FormatInt(o.Version, 10))
	w.Header().Set("ETag", etag)
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	httpx.WriteJSON(w, http.StatusOK, o)
	return nil
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 13.1.2):
// any listed tag equal to ours, with or without W/, or "*".
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// readOrder reads the summary and its lines in one statement, so both come
// from one snapshot: the projector rewrites them in one transaction, and two
// statements could show the lines of a newer version than the summary.
func (a *API) readOrder(ctx context.Context, id ulid.ULID) (Order, error) {
	rows, err := a.pool.Query(ctx, `SELECT `+summarySelect+`, l.line_no, l.sku, l.name, l.quantity, l.unit_price_minor
		FROM order_summaries s LEFT JOIN order_lines l ON l.order_id = s.order_id
		WHERE s.order_id = $1 ORDER BY l.line_no`, pgtype.UUID{Bytes: id, Valid: true})
	if err != nil {
		return Order{}, fmt.Errorf("read order %s: %w", id, err)
	}
	defer rows.Close()
	var (
		o     Order
		found bool
	)
	o.Lines = []Line{}
	for rows.Next() {
		var (
			s         Summary
			no        *int32
			sku, name *string
			qty, unit *int64
		)
		dest, done := summaryDest(&s)
		if err := rows.Scan(append(dest, &no, &sku, &name, &qty, &unit)...); err != nil {
			return Order{}, fmt.Errorf("read order %s: %w", id, err)
		}
		done()
		o.Summary, found = s, true
		if no != nil {
			o.Lines = append(o.Lines, newLine(int(*no), *sku, *name, *qty, *unit))
		}
	}
	if err := rows.Err(); err != nil {
		return Order{}, fmt.Errorf("read order %s: %w", id, err)
	}
	if !found {
		return Order{}, orderNotFound()
	}
	return o, nil
}

// asOf is a point in an order's history: a version, or a time.
type asOf struct {
	version int64     // > 0 when as_of was a version
	time    time.Time // otherwise
}

func parseAsOf(q *query) *asOf {
	v, ok := q.one("as_of")
	if !ok {
		return nil
	}
	if v[0] >= '0' && v[0] <= '9' && !strings.ContainsAny(v, "-:T") {
		// No order passes order.MaxEvents, so no later version exists.
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > order.MaxEvents {
			q.errs.add("as_of", "a version must be an integer from 1 to %d (an order holds at most %d events)", order.MaxEvents, order.MaxEvents)
			return nil
		}
		return &asOf{version: n}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		q.errs.add("as_of", "must be a version (integer ≥ 1) or an RFC 3339 time such as 2025-01-31T12:00:00Z")
		return nil
	}
	return &asOf{time: t}
}

// orderAsOf folds the order's events from the store up to at: through
// version at.version, or through the last event recorded at or before
// at.time. It stops at the first event recorded after at.time, so the result
// is always a state the order really had (a prefix of its stream), even if
// two commits' clocks disagree. It reads at most order.MaxEvents events, in
// one read: a stream longer than that (written before the cap existed) whose
// answer lies beyond the cap is refused, never folded in part.
func (a *API) orderAsOf(ctx context.Context, id ulid.ULID, at asOf) (Order, error) {
	var (
		st      order.State
		updated time.Time
	)
	limit := order.MaxEvents + 1 // one more tells a stream past the cap
	if at.version > 0 {
		limit = int(at.version) // parseAsOf keeps it ≤ order.MaxEvents
	}
	evs, err := a.store.ReadStream(ctx, orderStream(id), 1, limit)
	if err != nil {
		return Order{}, err
	}
	for _, e := range evs {
		if at.version == 0 && e.RecordedAt.After(at.time) {
			break
		}
		if e.Version > order.MaxEvents {
			return Order{}, badRequest("invalid-parameter", "Invalid query parameter",
				fmt.Sprintf("this order has more than %d events, the most an as_of read folds; ask for an earlier time or a version", order.MaxEvents),
				[]httpx.FieldError{{Field: "as_of", Message: fmt.Sprintf("lies beyond the order's first %d events", order.MaxEvents)}})
		}
		if _, err := a.registry.Apply(&st, e.Type, e.SchemaVersion, e.Data); err != nil {
			return Order{}, fmt.Errorf("order %s version %d: %w", id, e.Version, err)
		}
		updated = e.RecordedAt
	}
	switch {
	case len(evs) == 0:
		return Order{}, orderNotFound()
	case st.Version == 0:
		return Order{}, notYet("the order did not exist at "+at.time.UTC().Format(time.RFC3339Nano), nil)
	case at.version > st.Version:
		v := st.Version
		return Order{}, notYet(fmt.Sprintf("the order has not reached version %d", at.version), &v)
	case !st.Exists() || st.ID == (ulid.ULID{}):
		return Order{}, errors.New("stream does not start with OrderCreated")
	}
	return orderFromState(st, updated), nil
}
