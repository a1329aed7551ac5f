package queries_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/queries"
)

type historyReply struct {
	OrderID         string                 `json:"order_id"`
	Events          []queries.HistoryEvent `json:"events"`
	NextFromVersion int64                  `json:"next_from_version"`
}

func TestHistoryUpcastsOldEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	a := e.create(newOrder{customer: "c-1"})
	// An ItemAdded as schema v1 wrote it: the price was "price_minor".
	e.appendRaw(a.id, eventstore.EventData{ID: ulid.Make(), Type: order.NameItemAdded, SchemaVersion: 1,
		Data: json.RawMessage(`{"sku":"mug","name":"Mug","quantity":2,"price_minor":1250}`)})
	path := "/v1/orders/" + a.id.String()

	t.Run("history shows the current schema and the stored version", func(t *testing.T) {
		var h historyReply
		e.get(path+"/history").ok(t, &h)
		if h.OrderID != a.id.String() || len(h.Events) != 2 {
			t.Fatalf("history = %+v", h)
		}
		ev := h.Events[1]
		if ev.Type != order.NameItemAdded || ev.Version != 2 || ev.SchemaVersion != 2 || ev.StoredSchemaVersion != 1 {
			t.Errorf("envelope = %+v", ev.Envelope)
		}
		var data map[string]any
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data["unit_price_minor"] != 1250.0 || data["price_minor"] != nil {
			t.Errorf("data = %s, want unit_price_minor 1250 and no price_minor", ev.Data)
		}
		if first := h.Events[0]; first.SchemaVersion != 2 || first.StoredSchemaVersion != 2 || first.EventID == "" || first.Position < 1 {
			t.Errorf("first = %+v", first)
		}
	})
	t.Run("the projector and ?as_of fold the upcast event", func(t *testing.T) {
		e.project()
		for _, p := range []string{path, path + "?as_of=2"} {
			var o queries.Order
			e.get(p).ok(t, &o)
			if len(o.Lines) != 1 || o.Lines[0].UnitPriceMinor != 1250 || o.TotalMinor != 2500 {
				t.Errorf("%s: %+v", p, o)
			}
		}
	})
	t.Run("from_version and limit page through the stream", func(t *testing.T) {
		var h historyReply
		e.get(path+"/history?limit=1").ok(t, &h)
		if len(h.Events) != 1 || h.NextFromVersion != 2 {
			t.Errorf("first page: %d events, next %d", len(h.Events), h.NextFromVersion)
		}
		h = historyReply{}
		e.get(path+"/history?from_version=2&limit=1").ok(t, &h)
		if len(h.Events) != 1 || h.Events[0].Version != 2 || h.NextFromVersion != 0 {
			t.Errorf("last page: %+v", h)
		}
		h = historyReply{}
		e.get(path+"/history?from_version=9").ok(t, &h)
		if len(h.Events) != 0 || h.Events == nil {
			t.Errorf("past the end: %+v, want an empty list", h)
		}
	})
	t.Run("an event of a type this code does not know is shown as stored; as_of cannot fold past it", func(t *testing.T) {
		b := e.create(newOrder{customer: "c-2"})
		future := `{"anything":[1,2]}`
		e.appendRaw(b.id, eventstore.EventData{ID: ulid.Make(), Type: "FromTheFuture", SchemaVersion: 7, Data: json.RawMessage(future)})
		var h historyReply
		e.get("/v1/orders/"+b.id.String()+"/history").ok(t, &h)
		if len(h.Events) != 2 || h.Events[1].Type != "FromTheFuture" || h.Events[1].SchemaVersion != 7 ||
			h.Events[1].StoredSchemaVersion != 7 || string(h.Events[1].Data) != future {
			t.Fatalf("history = %+v", h.Events)
		}
		var o queries.Order
		e.get("/v1/orders/"+b.id.String()+"?as_of=1").ok(t, &o) // the prefix before it folds
		if o.Version != 1 {
			t.Errorf("as_of=1: version %d", o.Version)
		}
	})
	t.Run("an unknown order is a 404", func(t *testing.T) {
		e.get("/v1/orders/"+ulid.Make().String()+"/history").problem(t, http.StatusNotFound, "order-not-found", "")
	})
	t.Run("an invalid id is a 400", func(t *testing.T) {
		e.get("/v1/orders/123/history").problem(t, http.StatusBadRequest, "invalid-order-id", "id")
	})
	for _, c := range []struct{ query, field string }{{"limit=0", "limit"}, {"limit=1001", "limit"}, {"from_version=0", "from_version"}, {"since=1", "since"}} {
		t.Run(c.query+" is a 400 naming "+c.field, func(t *testing.T) {
			e.get(path+"/history?"+c.query).problem(t, http.StatusBadRequest, "invalid-parameter", c.field)
		})
	}
}
