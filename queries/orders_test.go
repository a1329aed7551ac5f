package queries_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/queries"
)

// lifecycle creates a paid, shipped order with two lines and returns its id.
func lifecycle(e *env, t0 time.Time) ulid.ULID {
	a := e.create(newOrder{customer: "c-1", createdAt: t0, items: []order.ItemAdded{item("mug", 2, 1250), item("plate", 1, 900)}})
	e.append(a.id, order.OrderPlaced{TotalMinor: 3400, ItemCount: 3, PlacedAt: t0.Add(time.Minute)})
	e.append(a.id, order.PaymentRecorded{AmountMinor: 3400, Currency: "EUR", Reference: "psp-1", PaidAt: t0.Add(2 * time.Minute)})
	e.append(a.id, order.OrderShipped{Carrier: "DHL", TrackingNumber: "JD1", ShippedAt: t0.Add(3 * time.Minute)})
	return a.id
}

func TestGetOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.UTC)
	id := lifecycle(e, t0)
	e.project()
	path := "/v1/orders/" + id.String()

	t.Run("the summary and its lines come back with the version as ETag", func(t *testing.T) {
		r := e.get(path)
		var o queries.Order
		r.ok(t, &o)
		if got := r.Header.Get("ETag"); got != `"6"` {
			t.Errorf("ETag = %s, want \"6\"", got)
		}
		if o.OrderID != id.String() || o.CustomerID != "c-1" || o.Currency != "EUR" || o.Status != "shipped" ||
			o.TotalMinor != 3400 || o.PaidMinor != 3400 || o.LineCount != 2 || o.ItemQuantity != 3 || o.Version != 6 {
			t.Errorf("summary = %+v", o.Summary)
		}
		if !o.CreatedAt.Equal(t0.Truncate(time.Microsecond)) || o.PaidAt == nil || !o.PaidAt.Equal(t0.Add(2*time.Minute).Truncate(time.Microsecond)) {
			t.Errorf("times = created %v paid %v", o.CreatedAt, o.PaidAt)
		}
		if o.Carrier == nil || *o.Carrier != "DHL" || o.PaymentReference == nil || *o.PaymentReference != "psp-1" {
			t.Errorf("texts = %+v", o.Summary)
		}
		want := []queries.Line{{1, "mug", "MUG", 2, 1250, 2500}, {2, "plate", "PLATE", 1, 900, 900}}
		if len(o.Lines) != 2 || o.Lines[0] != want[0] || o.Lines[1] != want[1] {
			t.Errorf("lines = %+v, want %+v", o.Lines, want)
		}
		for _, absent := range []string{"delivered_at", "cancelled_at", "refunded_at", "cancel_reason"} {
			if bytes.Contains(r.Body, []byte(`"`+absent+`"`)) {
				t.Errorf("null %s is not omitted: %s", absent, r.Body)
			}
		}
	})
	t.Run("If-None-Match with the current ETag is a 304 without a body", func(t *testing.T) {
		for _, inm := range []string{`"6"`, `W/"6"`, `"5", "6"`, `*`} {
			r := e.get(path, "If-None-Match", inm)
			if r.Status != http.StatusNotModified || len(r.Body) != 0 || r.Header.Get("ETag") != `"6"` {
				t.Errorf("If-None-Match %s: status %d, ETag %s, body %q", inm, r.Status, r.Header.Get("ETag"), r.Body)
			}
		}
	})
	t.Run("If-None-Match with an older ETag gets the order", func(t *testing.T) {
		if r := e.get(path, "If-None-Match", `"5"`); r.Status != http.StatusOK {
			t.Errorf("status %d", r.Status)
		}
	})
	t.Run("an unknown order is a 404 problem", func(t *testing.T) {
		e.get("/v1/orders/"+ulid.Make().String()).problem(t, http.StatusNotFound, "order-not-found", "")
	})
	t.Run("an id that is not a ULID is a 400 naming id", func(t *testing.T) {
		e.get("/v1/orders/not-a-ulid").problem(t, http.StatusBadRequest, "invalid-order-id", "id")
	})
	t.Run("an unknown query parameter is a 400 naming it", func(t *testing.T) {
		p := e.get(path+"?asof=3").problem(t, http.StatusBadRequest, "invalid-parameter", "asof")
		if !bytes.Contains([]byte(p.Detail), []byte("asof")) {
			t.Errorf("detail %q does not name the parameter", p.Detail)
		}
	})
}

func TestGetOrderAsOf(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	id := lifecycle(e, time.Now().Add(-time.Hour))
	e.project()
	path := "/v1/orders/" + id.String()
	evs, err := e.store.ReadStream(context.Background(), eventStream(id), 1, 100)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("as_of a version folds the store up to it", func(t *testing.T) {
		r := e.get(path + "?as_of=4")
		var o queries.Order
		r.ok(t, &o)
		if o.Version != 4 || o.Status != "placed" || o.TotalMinor != 3400 || o.PaidAt != nil || len(o.Lines) != 2 {
			t.Errorf("as_of=4 = %+v", o)
		}
		if !o.UpdatedAt.Equal(evs[3].RecordedAt) {
			t.Errorf("updated_at = %v, want the 4th event's recorded_at %v", o.UpdatedAt, evs[3].RecordedAt)
		}
		if got := r.Header.Get("ETag"); got != `"4"` {
			t.Errorf("ETag = %s", got)
		}
	})
	t.Run("as_of a time folds the events recorded until then", func(t *testing.T) {
		at := evs[4].RecordedAt // the payment
		var o queries.Order
		e.get(path+"?as_of="+url.QueryEscape(at.Format(time.RFC3339Nano))).ok(t, &o)
		if o.Version != 5 || o.Status != "paid" {
			t.Errorf("as_of %v = version %d %s, want 5 paid", at, o.Version, o.Status)
		}
		e.get(path+"?as_of="+url.QueryEscape(at.Add(-time.Microsecond).Format(time.RFC3339Nano))).ok(t, &o)
		if o.Version != 4 {
			t.Errorf("just before the payment: version %d, want 4", o.Version)
		}
	})
	t.Run("as_of the current version equals the read model", func(t *testing.T) {
		live, past := e.get(path), e.get(path+"?as_of=6")
		if !bytes.Equal(live.Body, past.Body) || live.Header.Get("ETag") != past.Header.Get("ETag") {
			t.Errorf("read model:\n%s\nfolded:\n%s", live.Body, past.Body)
		}
	})
	t.Run("as_of before the order existed is a 404", func(t *testing.T) {
		before := evs[0].RecordedAt.Add(-time.Second).Format(time.RFC3339)
		e.get(path+"?as_of="+before).problem(t, http.StatusNotFound, "order-not-found", "")
	})
	t.Run("as_of a version not reached yet is a 404 with the current version", func(t *testing.T) {
		p := e.get(path+"?as_of=7").problem(t, http.StatusNotFound, "order-not-found", "")
		if p.CurrentVersion == nil || *p.CurrentVersion != 6 {
			t.Errorf("current_version = %v, want 6", p.CurrentVersion)
		}
	})
	t.Run("as_of of an unknown order is a 404", func(t *testing.T) {
		e.get("/v1/orders/"+ulid.Make().String()+"?as_of=1").problem(t, http.StatusNotFound, "order-not-found", "")
	})
	for _, bad := range []string{"0", "-1", "yesterday", "2025-13-01T00:00:00Z", "2025-01-01", "1.5", ""} {
		t.Run("as_of="+strconv.Quote(bad)+" is a 400 naming as_of", func(t *testing.T) {
			e.get(path+"?as_of="+url.QueryEscape(bad)).problem(t, http.StatusBadRequest, "invalid-parameter", "as_of")
		})
	}
	t.Run("as_of given twice is a 400", func(t *testing.T) {
		e.get(path+"?as_of=1&as_of=2").problem(t, http.StatusBadRequest, "invalid-parameter", "as_of")
	})
}
