package loadgen

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestOrderWalksTheWholeLifeAndPaysItsTotal(t *testing.T) {
	var (
		o Order
		r Request
	)
	o.Start([]byte("bench-c42"), 7)
	type sent struct{ path, body string }
	var got []sent
	for v := int64(1); ; v++ {
		o.Build(&r)
		if r.Method != "POST" {
			t.Fatalf("method %s", r.Method)
		}
		got = append(got, sent{string(r.Path), string(r.Body)})
		if len(r.Body) > 0 && !json.Valid(r.Body) {
			t.Fatalf("%s: body is not JSON: %s", r.Path, r.Body)
		}
		if o.Advance(200, []byte(fmt.Sprintf("01JDORDER:%d:%d", v, 100+v))) {
			break
		}
	}
	want := []string{"/v1/orders", "/v1/orders/01JDORDER/items", "/v1/orders/01JDORDER/place",
		"/v1/orders/01JDORDER/payments", "/v1/orders/01JDORDER/ship", "/v1/orders/01JDORDER/deliver"}
	if len(got) != len(want) {
		t.Fatalf("sent %d commands, want %d: %v", len(got), len(want), got)
	}
	for i, p := range want {
		if got[i].path != p {
			t.Errorf("command %d: %s, want %s", i, got[i].path, p)
		}
	}
	var create struct {
		CustomerID string            `json:"customer_id"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal([]byte(got[0].body), &create); err != nil || create.CustomerID != "bench-c42" || len(create.Items) != 2 {
		t.Errorf("create body %s: customer and two items expected (%v)", got[0].body, err)
	}
	var pay struct {
		AmountMinor int64  `json:"amount_minor"`
		Reference   string `json:"reference"`
	}
	if err := json.Unmarshal([]byte(got[3].body), &pay); err != nil || pay.AmountMinor != Total || pay.Reference != "bench-7" {
		t.Errorf("payment body %s: want amount %d, reference bench-7 (%v)", got[3].body, Total, err)
	}
	if got[2].body != "" || got[5].body != "" {
		t.Errorf("place and deliver take no body: %q, %q", got[2].body, got[5].body)
	}
}

func TestTheTotalIsTheSumOfTheThreeItems(t *testing.T) {
	var sum int64
	for _, it := range []string{item1, item2, item3} {
		var v struct {
			Quantity       int64 `json:"quantity"`
			UnitPriceMinor int64 `json:"unit_price_minor"`
		}
		if err := json.Unmarshal([]byte(it), &v); err != nil {
			t.Fatal(err)
		}
		sum += v.Quantity * v.UnitPriceMinor
	}
	if sum != Total {
		t.Fatalf("items sum to %d, Total is %d", sum, Total)
	}
}

func TestAFailedCommandAbandonsTheOrder(t *testing.T) {
	var o Order
	o.Start([]byte("c"), 1)
	if o.Advance(201, []byte("ID:3:3")) {
		t.Fatal("create ended the life")
	}
	if !o.Advance(409, nil) {
		t.Fatal("a 409 did not end the life")
	}
	o.Start([]byte("c"), 2)
	if o.Next != Create || len(o.ID) != 0 {
		t.Fatalf("after Start: next %s, id %q", o.Next, o.ID)
	}
	if !o.Advance(201, []byte("no token")) {
		t.Fatal("a create without a usable Consistency-Token did not end the life")
	}
}

func TestParseTokenSplitsIdVersionAndPosition(t *testing.T) {
	for _, c := range []struct {
		in      string
		id      string
		v, p    int64
		wantErr bool
	}{
		{"01JD:2:17", "01JD", 2, 17, false},
		{"01JD:2", "", 0, 0, true},
		{":2:3", "", 0, 0, true},
		{"01JD:x:3", "", 0, 0, true},
		{"01JD:2:3:4", "", 0, 0, true},
		{"", "", 0, 0, true},
	} {
		id, v, p, ok := ParseToken([]byte(c.in))
		if ok == c.wantErr || (ok && (string(id) != c.id || v != c.v || p != c.p)) {
			t.Errorf("%q: got %q %d %d ok=%v", c.in, id, v, p, ok)
		}
	}
}
