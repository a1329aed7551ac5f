package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/internal/httpx"
)

// Every exchange in these tests goes through api.do, which checks it
// against openapi/openapi.yaml.

// TestTheCurlWalk drives one order through its whole life the way the
// README's curl session does.
func TestTheCurlWalk(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	var id string
	steps := []struct {
		name   string
		call   func() reply
		status int
		etag   string
	}{
		{"creating an order with one item answers 201 at version 2", func() reply {
			return a.post("/v1/orders", createBody(mug))
		}, http.StatusCreated, `"2"`},
		{"adding an item answers 200 at version 3", func() reply {
			return a.post("/v1/orders/"+id+"/items", plate)
		}, http.StatusOK, `"3"`},
		{"removing an item answers at version 4", func() reply {
			return a.do(call{Method: http.MethodDelete, Path: "/v1/orders/" + id + "/items/" + plate.SKU})
		}, http.StatusOK, `"4"`},
		{"placing the order answers at version 5", func() reply {
			return a.post("/v1/orders/"+id+"/place", "")
		}, http.StatusOK, `"5"`},
		{"paying the exact total answers at version 6", func() reply {
			return a.post("/v1/orders/"+id+"/payments", map[string]any{"amount_minor": 2500, "currency": "EUR", "reference": "psp-1"})
		}, http.StatusOK, `"6"`},
		{"shipping answers at version 7", func() reply {
			return a.post("/v1/orders/"+id+"/ship", map[string]any{"carrier": "DHL", "tracking_number": "JD0001"})
		}, http.StatusOK, `"7"`},
		{"delivering with an empty JSON object answers at version 8", func() reply {
			return a.post("/v1/orders/"+id+"/deliver", "{}")
		}, http.StatusOK, `"8"`},
	}
	var lastPosition int64
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := s.call()
			r.want(t, s.status, "")
			o := r.outcome(t)
			if id == "" {
				id = o.OrderID
				if got := r.Header.Get("Location"); got != "/v1/orders/"+id {
					t.Errorf("Location = %q, want /v1/orders/%s", got, id)
				}
			}
			if o.OrderID != id {
				t.Errorf("order_id = %s, want %s", o.OrderID, id)
			}
			if got := r.Header.Get("ETag"); got != s.etag {
				t.Errorf("ETag = %s, want %s", got, s.etag)
			}
			if strconv.Quote(strconv.FormatInt(o.Version, 10)) != s.etag {
				t.Errorf("version %d does not match ETag %s", o.Version, s.etag)
			}
			if o.Position <= lastPosition {
				t.Errorf("position %d not above the previous %d", o.Position, lastPosition)
			}
			lastPosition = o.Position
			if got, want := r.Header.Get("Consistency-Token"), fmt.Sprintf("%s:%d:%d", id, o.Version, o.Position); got != want {
				t.Errorf("Consistency-Token = %q, want %q", got, want)
			}
			if r.Header.Get("Idempotent-Replayed") != "" {
				t.Error("Idempotent-Replayed on a first request")
			}
		})
		if t.Failed() {
			return
		}
	}
	want := []string{"OrderCreated", "ItemAdded", "ItemAdded", "ItemRemoved", "OrderPlaced",
		"PaymentRecorded", "OrderShipped", "OrderDelivered"}
	if got := types(a.envelopes(id)); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func TestCancellingAPaidOrderRecordsARefund(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	id := a.paid()
	r := a.post("/v1/orders/"+id+"/cancel", map[string]string{"reason": "customer changed their mind"})
	r.want(t, http.StatusOK, "")
	if got := r.Header.Get("ETag"); got != `"6"` {
		t.Errorf("ETag = %s, want \"6\" (cancel and refund in one append)", got)
	}
	evs := a.envelopes(id)
	if got, want := types(evs), []string{"OrderCreated", "ItemAdded", "OrderPlaced", "PaymentRecorded", "OrderCancelled", "RefundRecorded"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if refund := string(evs[5].Data); !strings.Contains(refund, `"amount_minor":2500`) {
		t.Errorf("refund %s is not the order's total", refund)
	}
}

func TestIfMatch(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	cases := []struct {
		name    string
		ifMatch string
		status  int
		slug    string
	}{
		{"the current version is accepted", `"2"`, http.StatusOK, ""},
		{"a stale version is refused with the current version", `"1"`, http.StatusPreconditionFailed, "stale-version"},
		{"a version from the future is refused as stale", `"9"`, http.StatusPreconditionFailed, "stale-version"},
		{"an unquoted version is malformed", `2`, http.StatusBadRequest, "invalid-if-match"},
		{"a weak tag is malformed", `W/"2"`, http.StatusBadRequest, "invalid-if-match"},
		{"a wildcard is malformed", `*`, http.StatusBadRequest, "invalid-if-match"},
		{"a quoted non-number is malformed", `"two"`, http.StatusBadRequest, "invalid-if-match"},
		{"an empty quoted tag is malformed", `""`, http.StatusBadRequest, "invalid-if-match"},
		{"a negative version is malformed", `"-1"`, http.StatusBadRequest, "invalid-if-match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := a.create(mug) // at version 2
			before := a.rows()
			r := a.post("/v1/orders/"+id+"/items", plate, "If-Match", c.ifMatch)
			r.want(t, c.status, c.slug)
			if c.status == http.StatusOK {
				if got := r.Header.Get("ETag"); got != `"3"` {
					t.Errorf("ETag = %s, want \"3\"", got)
				}
				return
			}
			a.unchanged(before)
			if c.status == http.StatusPreconditionFailed {
				if p := r.problem(t); p.CurrentVersion == nil || *p.CurrentVersion != 2 {
					t.Errorf("current_version = %v, want 2", p.CurrentVersion)
				}
			}
		})
	}
}

// TestConcurrentWritersWithoutIfMatchAreRetried: writers that lose the race
// for the next version are decided again on fresh state, so (nearly) all
// succeed; one that keeps losing gets 409 concurrency-conflict. Either way
// the stream ends consecutive and holds exactly the accepted items.
func TestConcurrentWritersWithoutIfMatchAreRetried(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	id := a.create()
	const writers = 20
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok       []int64
		conflict int
	)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			item := commands.ItemInput{SKU: fmt.Sprintf("SKU-%02d", i), Name: "Thing", Quantity: 1, UnitPriceMinor: 100}
			r := a.post("/v1/orders/"+id+"/items", item)
			mu.Lock()
			defer mu.Unlock()
			switch r.Status {
			case http.StatusOK:
				ok = append(ok, r.outcome(t).Version)
			case http.StatusConflict:
				if p := r.problem(t); p.Type != httpx.ProblemTypeBase+"concurrency-conflict" {
					t.Errorf("409 of type %s", p.Type)
				}
				conflict++
			default:
				t.Errorf("status %d: %s", r.Status, r.Body)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d accepted, %d gave up after retries", len(ok), conflict)
	if len(ok) == 0 {
		t.Fatal("no writer succeeded")
	}
	slices.Sort(ok)
	if len(slices.Compact(slices.Clone(ok))) != len(ok) {
		t.Errorf("two writers were answered the same version: %v", ok)
	}
	evs := a.envelopes(id)
	if len(evs) != 1+len(ok) {
		t.Errorf("%d events, want 1 + %d accepted", len(evs), len(ok))
	}
	for i, e := range evs {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d: the stream is not consecutive", i, e.Version)
		}
	}
}

func TestIdempotencyKeyReplaysTheFirstAnswer(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	target := a.create(mug)
	cases := []struct {
		name   string
		path   string
		body   any
		status int
	}{
		{"a repeated creation replays its 201 and Location", "/v1/orders", createBody(mug), http.StatusCreated},
		{"a repeated item addition replays its 200", "/v1/orders/" + target + "/items", plate, http.StatusOK},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := fmt.Sprintf("replay-%d", i)
			first := a.post(c.path, c.body, "Idempotency-Key", key)
			first.want(t, c.status, "")
			before := a.rows()
			replay := a.post(c.path, c.body, "Idempotency-Key", key)
			replay.want(t, c.status, "")
			a.unchanged(before)
			if string(replay.Body) != string(first.Body) {
				t.Errorf("body: first %s, replay %s", first.Body, replay.Body)
			}
			sameExceptPerRequest(t, first.Header, replay.Header)
			if got := replay.Header.Get("Idempotent-Replayed"); got != "true" {
				t.Errorf("Idempotent-Replayed = %q, want true", got)
			}
			if first.Header.Get("Idempotent-Replayed") != "" {
				t.Error("Idempotent-Replayed on the first answer")
			}
		})
	}
}

func TestIdempotencyKeyWithAnotherRequestIsRefused(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	id := a.create(mug)
	a.post("/v1/orders/"+id+"/items", plate, "Idempotency-Key", "k1").want(t, http.StatusOK, "")
	cases := []struct {
		name string
		path string
		body any
	}{
		{"another body", "/v1/orders/" + id + "/items", commands.ItemInput{SKU: "CUP", Name: "Cup", Quantity: 1, UnitPriceMinor: 1}},
		{"another endpoint", "/v1/orders/" + id + "/place", ""},
	}
	for _, c := range cases {
		t.Run("the same key with "+c.name+" is 422", func(t *testing.T) {
			before := a.rows()
			a.post(c.path, c.body, "Idempotency-Key", "k1").want(t, http.StatusUnprocessableEntity, "idempotency-key-reused")
			a.unchanged(before)
		})
	}
}

func TestTheSameKeySentConcurrentlyAppendsOnce(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	id := a.create(mug)
	before := a.rows()
	const senders = 10
	replies := make([]reply, senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = a.post("/v1/orders/"+id+"/items", plate, "Idempotency-Key", "once")
		}()
	}
	wg.Wait()
	fresh := 0
	for _, r := range replies {
		r.want(t, http.StatusOK, "")
		if string(r.Body) != string(replies[0].Body) {
			t.Errorf("answers differ: %s and %s", r.Body, replies[0].Body)
		}
		if r.Header.Get("Idempotent-Replayed") == "" {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d answers were not replays, want 1", fresh)
	}
	if after := a.rows(); after.Events != before.Events+1 || after.Keys != before.Keys+1 {
		t.Errorf("rows %+v → %+v, want one event and one key more", before, after)
	}
}

// TestBadInputChangesNothing: every refused request leaves the events and
// the idempotency keys as they were, even when it carries a key.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	draft := a.create(mug)
	unknown := ulid.Make().String()
	cases := []struct {
		name   string
		call   call
		status int
		slug   string
		field  string // the first errors[].field, when set
		rule   string
	}{
		{"an unknown field is 400 naming it",
			call{Method: "POST", Path: "/v1/orders/" + draft + "/items", Body: `{"sku":"A","name":"A","quantity":1,"unit_price_minor":1,"colour":"red"}`},
			400, "malformed-json", "colour", ""},
		{"trailing data after the object is 400",
			call{Method: "POST", Path: "/v1/orders/" + draft + "/cancel", Body: `{"reason":"r"} {"reason":"s"}`},
			400, "malformed-json", "", ""},
		{"malformed JSON is 400",
			call{Method: "POST", Path: "/v1/orders/" + draft + "/cancel", Body: `{"reason":`},
			400, "malformed-json", "", ""},
		{"a JSON array instead of an object is 400",
			call{Method: "POST", Path: "/v1/orders/" + draft + "/cancel", Body: `["r"]`},
			400, "malformed-json", "", ""},
		{"a field of the wrong type is 400 naming it",
			call{Method: "POST", Path: "/v1/orders/" + draft + "/items", Body: `{"sku":"A","name":"A","quantity":"2","unit_price_minor":1}`},
			400, "malformed-json", "quantity", ""},
		{"a body over 64 KiB is 413",
			call{Method: "POST", Path: "/v1/orders/" + draft + "/cancel", Body: bigBody(httpx.MaxBody)},
			413, "body-too-large", "", ""},
		{"a body that is not JSON is 415",
			call{Method: "POST", Path: "/v1/orders/" + draft + "/cancel", Body: `reason=r`, ContentType: "application/x-www-form-urlencoded"},
			415, "unsupported-media-type", "", ""},
		{"JSON in another charset is 415",
			call{Method: "POST", Path: "/v1/orders/" + draft + "/cancel", Body: `{"reason":"r"}`, ContentType: "application/json; charset=latin1"},
			415, "unsupported-media-type", "", ""},
		{"an invalid item of a creation is 422 with its path",
			call{Method: "POST", Path: "/v1/orders", Body: `{"customer_id":"c","currency":"EUR","items":[{"sku":"A","name":"A","quantity":0,"unit_price_minor":1}]}`},
			422, "validation", "items[0].quantity", ""},
		{"a quantity above 10000 is 422",
			call{Method: "POST", Path: "/v1/orders/" + draft + "/items", Body: `{"sku":"A","name":"A","quantity":10001,"unit_price_minor":1}`},
			422, "validation", "quantity", ""},
		{"a creation without fields is 422 listing them",
			call{Method: "POST", Path: "/v1/orders", Body: `{}`},
			422, "validation", "customer_id", ""},
		{"paying a draft is 409 naming the rule",
			call{Method: "POST", Path: "/v1/orders/" + draft + "/payments", Body: `{"amount_minor":2500,"currency":"EUR","reference":"p"}`},
			409, "rule-violation", "", commands.RulePaymentRequiresPlaced},
		{"a command for an unknown order is 404",
			call{Method: "POST", Path: "/v1/orders/" + unknown + "/place"},
			404, "order-not-found", "", ""},
		{"an order id that is not a ULID is 400",
			call{Method: "POST", Path: "/v1/orders/not-a-ulid/place"},
			400, "invalid-order-id", "id", ""},
		{"a DELETE with a body is 400",
			call{Method: "DELETE", Path: "/v1/orders/" + draft + "/items/" + mug.SKU, Body: `{"sku":"MUG-01"}`},
			400, "malformed-json", "", ""},
		{"removing a SKU that is not on the order is 404",
			call{Method: "DELETE", Path: "/v1/orders/" + draft + "/items/NOPE"},
			404, "item-not-found", "", ""},
		{"an Idempotency-Key with a space is 400",
			call{Method: "POST", Path: "/v1/orders/" + draft + "/place", Header: headers("Idempotency-Key", "a b")},
			400, "invalid-idempotency-key", "", ""},
		{"an Idempotency-Key over 255 characters is 400",
			call{Method: "POST", Path: "/v1/orders/" + draft + "/place", Header: headers("Idempotency-Key", strings.Repeat("k", 256))},
			400, "invalid-idempotency-key", "", ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.call.Header == nil {
				c.call.Header = headers("Idempotency-Key", fmt.Sprintf("bad-%d", i))
			}
			before := a.rows()
			r := a.do(c.call)
			r.want(t, c.status, c.slug)
			a.unchanged(before)
			p := r.problem(t)
			if p.Status != c.status || p.Title == "" || p.Instance != c.call.Path {
				t.Errorf("problem %+v: want status %d, a title and instance %s", p, c.status, c.call.Path)
			}
			if r.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type = %q", r.Header.Get("Content-Type"))
			}
			if c.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != c.field) {
				t.Errorf("errors = %+v, want the first for field %q", p.Errors, c.field)
			}
			if p.Rule != c.rule {
				t.Errorf("rule = %q, want %q", p.Rule, c.rule)
			}
		})
	}
}

func TestOrderEvents(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	r := a.do(call{Method: "POST", Path: "/v1/orders", Body: jsonOf(t, createBody(mug, plate)),
		Header: headers("X-Request-ID", "req-1", "X-Correlation-ID", "checkout-7")})
	r.want(t, http.StatusCreated, "")
	id := r.outcome(t).OrderID
	a.post("/v1/orders/"+id+"/place", "").want(t, http.StatusOK, "")

	t.Run("events come in version order as full envelopes", func(t *testing.T) {
		evs := a.envelopes(id)
		if got, want := types(evs), []string{"OrderCreated", "ItemAdded", "ItemAdded", "OrderPlaced"}; !slices.Equal(got, want) {
			t.Fatalf("events = %v, want %v", got, want)
		}
		seen := map[string]bool{}
		for i, e := range evs {
			if e.Version != int64(i+1) || e.StreamID != id || e.StreamType != "order" {
				t.Errorf("event %d: version %d stream %s/%s", i, e.Version, e.StreamType, e.StreamID)
			}
			if _, err := ulid.ParseStrict(e.EventID); err != nil || seen[e.EventID] {
				t.Errorf("event %d: id %q not a fresh ULID", i, e.EventID)
			}
			seen[e.EventID] = true
			if i > 0 && e.Position <= evs[i-1].Position {
				t.Errorf("event %d: position %d not above %d", i, e.Position, evs[i-1].Position)
			}
			if e.RecordedAt.IsZero() || e.SchemaVersion < 1 || len(e.Data) == 0 {
				t.Errorf("event %d: incomplete envelope %+v", i, e)
			}
		}
		if md := evs[0].Metadata; md.RequestID != "req-1" || md.CausationID != "req-1" || md.CorrelationID != "checkout-7" || md.Actor != "anonymous" {
			t.Errorf("metadata of the creation = %+v", md)
		}
		if md := evs[3].Metadata; md.CorrelationID == "" || md.CorrelationID != md.RequestID {
			t.Errorf("without X-Correlation-ID the request id correlates: %+v", md)
		}
		if evs[1].SchemaVersion != 2 {
			t.Errorf("ItemAdded schema version %d, want 2", evs[1].SchemaVersion)
		}
	})

	pages := []struct {
		name     string
		query    string
		versions []int64
	}{
		{"from_version and limit select a page", "?from_version=2&limit=2", []int64{2, 3}},
		{"the last page may be short", "?from_version=3&limit=1000", []int64{3, 4}},
		{"a page past the end is empty", "?from_version=5", []int64{}},
		{"limit alone starts at version 1", "?limit=1", []int64{1}},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			r := a.do(call{Method: "GET", Path: "/v1/orders/" + id + "/events" + p.query})
			r.want(t, http.StatusOK, "")
			var page struct {
				Events []struct {
					Version int64 `json:"version"`
				} `json:"events"`
			}
			if err := jsonUnmarshal(r.Body, &page); err != nil {
				t.Fatal(err)
			}
			got := []int64{}
			for _, e := range page.Events {
				got = append(got, e.Version)
			}
			if !slices.Equal(got, p.versions) {
				t.Errorf("versions %v, want %v", got, p.versions)
			}
		})
	}

	refused := []struct {
		name   string
		path   string
		status int
		slug   string
		field  string
	}{
		{"an unknown order is 404", "/v1/orders/" + ulid.Make().String() + "/events", 404, "order-not-found", ""},
		{"an id that is not a ULID is 400", "/v1/orders/01ARZ3NDEKTSV4RRFFQ69G5FA!/events", 400, "invalid-order-id", "id"},
		{"from_version 0 is 400", "/v1/orders/" + id + "/events?from_version=0", 400, "invalid-parameter", "from_version"},
		{"a non-numeric from_version is 400", "/v1/orders/" + id + "/events?from_version=two", 400, "invalid-parameter", "from_version"},
		{"limit 0 is 400", "/v1/orders/" + id + "/events?limit=0", 400, "invalid-parameter", "limit"},
		{"limit above 1000 is 400", "/v1/orders/" + id + "/events?limit=1001", 400, "invalid-parameter", "limit"},
		{"a non-numeric limit is 400", "/v1/orders/" + id + "/events?limit=all", 400, "invalid-parameter", "limit"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			r := a.do(call{Method: "GET", Path: c.path})
			r.want(t, c.status, c.slug)
			if p := r.problem(t); c.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != c.field) {
				t.Errorf("errors = %+v, want one for %s", p.Errors, c.field)
			}
		})
	}
}

// TestMoreKeyedCommandsThanPoolConnectionsAllComplete: a keyed command
// holds a connection for its transaction; if it needed a second one to load
// the order, as many concurrent keyed commands as the pool has connections
// would wait for each other forever (pgtest's pool has 32).
func TestMoreKeyedCommandsThanPoolConnectionsAllComplete(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = a.create(mug)
	}
	var wg sync.WaitGroup
	replies := make([]reply, len(ids))
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = a.post("/v1/orders/"+ids[i]+"/items", plate, "Idempotency-Key", fmt.Sprintf("k-%d", i))
		}()
	}
	wg.Wait()
	for _, r := range replies {
		r.want(t, http.StatusOK, "")
	}
}
