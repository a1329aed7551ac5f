package queries_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/queries"
)

// TestAsOfReadsAreBounded: an as_of read folds at most order.MaxEvents
// events. A stream past the cap can only predate it; such an order answers
// within the cap and refuses, naming as_of, what lies beyond.
func TestAsOfReadsAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, queries.Options{})
	created := e.create(newOrder{customer: "c-cap", items: []order.ItemAdded{item("mug", 1, 100)}})
	path := "/v1/orders/" + created.id.String()

	t.Run("a version past the cap is a 400 naming as_of, before any read", func(t *testing.T) {
		e.get(path+"?as_of="+strconv.Itoa(order.MaxEvents+1)).problem(t, http.StatusBadRequest, "invalid-parameter", "as_of")
	})

	// Take the stream past the cap, in appends of at most MaxAppend events.
	mid := time.Now()
	for total := int64(2); total <= order.MaxEvents; {
		n := min(order.MaxEvents+1-total, 500)
		evs := make([]order.Event, n)
		for i := range evs {
			if (total+int64(i))%2 == 0 {
				evs[i] = order.ItemRemoved{SKU: "mug"}
			} else {
				evs[i] = item("mug", 1, 100)
			}
		}
		e.append(created.id, evs...)
		total += n
	}

	t.Run("a version within the cap of a longer stream folds", func(t *testing.T) {
		var o queries.Order
		e.get(path+"?as_of="+strconv.Itoa(order.MaxEvents)).ok(t, &o)
		if o.Version != order.MaxEvents {
			t.Errorf("version = %d, want %d", o.Version, order.MaxEvents)
		}
	})
	t.Run("a time within the first events of a longer stream folds", func(t *testing.T) {
		var o queries.Order
		e.get(path+"?as_of="+url.QueryEscape(mid.Format(time.RFC3339Nano))).ok(t, &o)
		if o.Version != 2 {
			t.Errorf("version = %d, want 2", o.Version)
		}
	})
	t.Run("a time past the cap of a longer stream is a 400 naming as_of", func(t *testing.T) {
		now := url.QueryEscape(time.Now().Format(time.RFC3339Nano))
		e.get(path+"?as_of="+now).problem(t, http.StatusBadRequest, "invalid-parameter", "as_of")
	})
}
