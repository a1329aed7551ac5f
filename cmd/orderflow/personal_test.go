package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/audit"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/order"
)

// TestErasedPersonalDataIsInNoTableTopicLogOrReader creates orders with an
// email and a shipping address, changes an address, reads them through
// every reader, erases the customer, and then searches every table, every
// record of the topic, the server's log and every reader for the plaintext.
func TestErasedPersonalDataIsInNoTableTopicLogOrReader(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	srv := env.Serve(t)
	tag := strings.ToLower(ulid.Make().String())
	customer := "cust-" + tag
	email, first, second := "ada."+tag+"@example.com", "1 Secret Lane "+tag+"\nLondon", "2 Hidden Road "+tag+"\nLeeds"
	plain := []string{email, first, second, "Secret Lane " + tag, "Hidden Road " + tag}
	owner, admin := testenv.Token(t, customer, auth.Customer), testenv.Token(t, "admin-"+tag, auth.Admin)
	staff := testenv.Token(t, "staff-"+tag, auth.Staff)

	var orders []string
	for range 2 {
		body, _ := json.Marshal(map[string]any{"customer_id": customer, "currency": "EUR", "email": email, "shipping_address": first,
			"items": []map[string]any{{"sku": "MUG-01", "name": "Mug", "quantity": 1, "unit_price_minor": 1250}}})
		r := call(t, srv.URL, "POST", "/v1/orders", string(body), owner)
		var out struct {
			OrderID string `json:"order_id"`
		}
		if r.status != 201 || json.Unmarshal(r.body, &out) != nil {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		orders = append(orders, out.OrderID)
	}
	if r := call(t, srv.URL, "POST", "/v1/orders/"+orders[0]+"/shipping-address", `{"shipping_address":`+quote(second)+`}`, owner); r.status != 200 {
		t.Fatalf("change address: %d %s", r.status, r.body)
	}
	cid := quote(customer)
	for name, c := range map[string]struct{ body, token string }{
		"an email with a display name": {`{"customer_id":` + cid + `,"currency":"EUR","email":"Ada <ada@example.com>"}`, owner},
		"an email that is no address":  {`{"customer_id":` + cid + `,"currency":"EUR","email":"not-an-email"}`, owner},
		"an over-long email":           {`{"customer_id":` + cid + `,"currency":"EUR","email":"` + strings.Repeat("a", 250) + `@example.com"}`, owner},
		"an over-long address":         {`{"customer_id":` + cid + `,"currency":"EUR","shipping_address":"` + strings.Repeat("x", 501) + `"}`, owner},
		"an address of nine lines":     {`{"customer_id":` + cid + `,"currency":"EUR","shipping_address":"` + strings.Repeat("x\\n", 8) + `x"}`, owner},
		"an address of control chars":  {`{"customer_id":` + cid + `,"currency":"EUR","shipping_address":"a\u0007b"}`, owner},
		"the erased marker as address": {`{"customer_id":` + cid + `,"currency":"EUR","shipping_address":"[erased]"}`, owner},
		"an email as customer id":      {`{"customer_id":"ada@example.com","currency":"EUR"}`, testenv.Token(t, "ada@example.com", auth.Customer)},
	} {
		if r := call(t, srv.URL, "POST", "/v1/orders", c.body, c.token); r.status != 422 || !strings.HasSuffix(r.problem, "/validation") {
			t.Errorf("%s: %d %s, want 422 validation", name, r.status, r.body)
		}
	}
	if r := call(t, srv.URL, "POST", "/v1/orders/"+orders[1]+"/shipping-address", `{"shipping_address":""}`, owner); r.status != 422 {
		t.Errorf("an empty address change: %d %s, want 422", r.status, r.body)
	}

	// Before: every reader shows the plaintext.
	// readers reads every reader once the read model holds each order at
	// its version (orders[0] has one more: the address change).
	readers := func(version float64) map[string]string {
		out := map[string]string{}
		for i, id := range orders {
			want := version - float64(i)
			out["order "+id] = waitOrder(t, srv, id, staff, func(o map[string]any) bool { return o["version"] == want })
			out["as_of v1 "+id] = string(call(t, srv.URL, "GET", "/v1/orders/"+id+"?as_of=1", "", staff).body)
			out["history "+id] = string(call(t, srv.URL, "GET", "/v1/orders/"+id+"/history", "", staff).body)
			out["events "+id] = string(call(t, srv.URL, "GET", "/v1/orders/"+id+"/events", "", staff).body)
			out["websocket recovery "+id] = recoverOrder(t, srv, id, staff)
		}
		out["list"] = string(call(t, srv.URL, "GET", "/v1/orders?customer_id="+customer, "", staff).body)
		stdout, stderr, ok := orderflow(t, env.DB, "events", "export")
		if !ok {
			t.Fatalf("export: %s", stderr)
		}
		out["export"] = stdout
		return out
	}
	before := readers(3)
	for _, want := range []string{"as_of v1 " + orders[0], "history " + orders[0], "events " + orders[0], "websocket recovery " + orders[0], "list", "export"} {
		if !strings.Contains(before[want], "Secret Lane "+tag) {
			t.Errorf("before erasure, %s does not show the address: %s", want, before[want])
		}
	}
	if !strings.Contains(before["order "+orders[0]], "Hidden Road "+tag) || !strings.Contains(before["order "+orders[1]], email) {
		t.Errorf("before erasure the orders show %s and %s", before["order "+orders[0]], before["order "+orders[1]])
	}

	r := call(t, srv.URL, "DELETE", "/v1/customers/"+customer+"/personal-data", "", admin)
	if r.status != 200 || !strings.Contains(string(r.body), `"key_destroyed":true`) || !strings.Contains(string(r.body), `"orders_marked":2`) {
		t.Fatalf("erase: %d %s", r.status, r.body)
	}
	if r := call(t, srv.URL, "DELETE", "/v1/customers/"+customer+"/personal-data", "", staff); r.status != 403 {
		t.Fatalf("erase as staff: %d", r.status)
	}
	if r := call(t, srv.URL, "POST", "/v1/orders/"+orders[0]+"/shipping-address", `{"shipping_address":"3 New Street"}`, owner); !strings.HasSuffix(r.problem, "/rule-violation") {
		t.Fatalf("an address after erasure: %d %s", r.status, r.body)
	}

	// After: the read models caught up with PersonalDataErased, then rebuilt.
	for i, id := range orders {
		waitOrder(t, srv, id, staff, func(o map[string]any) bool { return o["version"] == float64(4-i) })
	}
	if _, stderr, ok := orderflow(t, env.DB, "projections", "rebuild", "all", "--reason", "erasure test"); !ok {
		t.Fatalf("rebuild: %s", stderr)
	}
	after := readers(4)
	for name, text := range after {
		for _, p := range plain {
			if strings.Contains(text, p) {
				t.Errorf("after erasure, %s shows %q: %s", name, p, text)
			}
		}
		if name != "export" && name != "list" && !strings.Contains(text, order.Erased) {
			t.Errorf("after erasure, %s shows no %s: %s", name, order.Erased, text)
		}
	}
	for _, id := range orders {
		if !strings.Contains(after["history "+id], order.NamePersonalDataErased) || !strings.Contains(after["history "+id], order.NameOrderCreated) {
			t.Errorf("the events of %s are not all there: %s", id, after["history "+id])
		}
	}
	if !strings.Contains(after["as_of v1 "+orders[0]], `"status":"draft"`) {
		t.Errorf("time travel no longer folds: %s", after["as_of v1 "+orders[0]])
	}

	// The raw tables, the topic and the log.
	searchTables(t, env, plain)
	for _, m := range testenv.ReadTopic(t, []string{srv.KafkaAddr}, testenv.Topic) {
		for _, p := range plain {
			if strings.Contains(string(m.Value), p) || strings.Contains(string(m.Key), p) {
				t.Errorf("topic record at offset %d holds %q", m.Offset, p)
			}
		}
	}
	logs, err := os.ReadFile(srv.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(plain, customer) {
		if strings.Contains(string(logs), p) {
			t.Errorf("the server's log holds %q", p)
		}
	}

	// The audit log says who erased whom, and when.
	entries, err := audit.List(context.Background(), env.DB.Query, audit.Filter{Action: audit.PersonalDataErased, Target: customer})
	if err != nil || len(entries) != 1 || entries[0].Actor != "admin-"+tag || entries[0].At.IsZero() {
		t.Fatalf("audit entries %+v, %v", entries, err)
	}
	fmt.Printf("erasure test: %d orders, %d readers searched after erasure\n", len(orders), len(after))
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// waitOrder polls GET /v1/orders/{id} until done holds (a hang guard of
// testenv.Patience) and returns the body.
func waitOrder(t *testing.T, srv *testenv.Server, id, token string, done func(map[string]any) bool) string {
	t.Helper()
	deadline := time.Now().Add(testenv.Patience)
	for {
		r := call(t, srv.URL, "GET", "/v1/orders/"+id, "", token)
		var o map[string]any
		if r.status == 200 && json.Unmarshal(r.body, &o) == nil && done(o) {
			return string(r.body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s: %d %s", id, r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recoverOrder subscribes to order:<id> from version 0 and returns the
// recovered frames.
func recoverOrder(t *testing.T, srv *testenv.Server, id, token string) string {
	t.Helper()
	h := map[string][]string{"Authorization": {"Bearer " + token}}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr+"/v1/stream", h)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ws.Close() }()
	if err := ws.WriteJSON(map[string]any{"type": "subscribe", "channel": "order:" + id, "since": 0}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(testenv.Patience))
	var frames []string
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("recover order:%s: %v", id, err)
		}
		if strings.Contains(string(b), `"type":"subscribed"`) {
			return strings.Join(frames, "\n")
		}
		frames = append(frames, string(b))
	}
}

// searchTables looks for each of plain in the text of every row of every
// table of the database.
func searchTables(t *testing.T, env *testenv.Env, plain []string) {
	t.Helper()
	ctx := context.Background()
	rows, err := env.DB.Owner.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgx.Identifier, error) {
		var s, n string
		return pgx.Identifier{s, n}, r.Scan(&s, &n)
	})
	if err != nil || len(tables) < 10 {
		t.Fatalf("tables %v, %v", tables, err)
	}
	for _, tb := range tables {
		for _, p := range plain {
			var n int
			if err := env.DB.Owner.QueryRow(ctx, `SELECT count(*) FROM `+tb.Sanitize()+` t WHERE strpos(t::text, $1) > 0`, p).Scan(&n); err != nil {
				t.Fatalf("search %s: %v", tb.Sanitize(), err)
			}
			if n > 0 {
				t.Errorf("table %s holds %q in %d rows", tb.Sanitize(), p, n)
			}
		}
	}
}
