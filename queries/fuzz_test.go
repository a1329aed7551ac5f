package queries

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// FuzzConsistencyToken: no header value panics the parser; what it accepts
// is an order id and a version and position ≥ 1, which the canonical form
// of the token gives back.
func FuzzConsistencyToken(f *testing.F) {
	id := ulid.MustParse("01JD4T0S6V1N2M3P4Q5R6S7T8V")
	for _, s := range []string{id.String() + ":2:2", " " + id.String() + ":1:9 ", id.String() + ":0:1", id.String() + ":2",
		"nope:2:3", id.String() + ":2:x", id.String() + ":99999999999999999999:1", ":::", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseTokenValue(s)
		if (tok == nil) == (err == nil) {
			t.Fatalf("%q: token %v and error %v", s, tok, err)
		}
		if tok == nil {
			return
		}
		if tok.version < 1 || tok.position < 1 {
			t.Fatalf("%q: accepted version %d, position %d", s, tok.version, tok.position)
		}
		again, err := parseTokenValue(fmt.Sprintf("%s:%d:%d", tok.orderID, tok.version, tok.position))
		if err != nil || *again != *tok {
			t.Fatalf("%q: canonical form parses to %v, %v", s, again, err)
		}
	})
}

// FuzzCursor: no cursor panics the list's parser; a cursor is accepted
// only as a position of the list it is used with, and a cursor the server
// made is accepted back with its key.
func FuzzCursor(f *testing.F) {
	created := time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.UTC)
	s := Summary{OrderID: "01JD4T0S6V1N2M3P4Q5R6S7T8V", CreatedAt: created, UpdatedAt: created, TotalMinor: 2500}
	for i, sortName := range sortNames {
		l := &listParams{sortName: sortName, sort: sorts[sortName], customerID: "c-42"}
		f.Add(uint8(i), nextCursor(s, l))
	}
	for _, c := range []string{"", "not a cursor", "e30", "eyJrIjoxLCJpZCI6MiwiZiI6M30", "eyJrIjoiIiwiaWQiOiIiLCJmIjoiIn0"} {
		f.Add(uint8(0), c)
	}
	f.Fuzz(func(t *testing.T, sortIndex uint8, raw string) {
		sortName := sortNames[int(sortIndex)%len(sortNames)]
		q := url.Values{"sort": {sortName}, "cursor": {raw}, "customer_id": {"c-42"}}
		l, err := parseList(httptest.NewRequest("GET", "/v1/orders?"+q.Encode(), nil))
		if err != nil {
			if !strings.Contains(err.Error(), "cursor") {
				t.Fatalf("cursor %q refused with %v, which does not name it", raw, err)
			}
			return
		}
		if raw != "" && l.afterKey == nil {
			t.Fatalf("cursor %q accepted without a key", raw)
		}
		if l.afterKey == nil {
			return
		}
		// Accepted: the server's own cursor for that position of that list
		// is accepted back with the same key and id.
		var key string
		switch k := l.afterKey.(type) {
		case int64:
			key = fmt.Sprint(k)
		case time.Time:
			key = k.Format(time.RFC3339Nano)
		default:
			t.Fatalf("cursor %q: key of type %T", raw, k)
		}
		var errs paramErrors
		again := cursor{Key: key, OrderID: l.afterID.String(), Fingerprint: l.fingerprint()}.encode()
		k2, id2, ok := decodeCursor(again, l, &errs)
		if !ok || id2 != l.afterID || fmt.Sprint(k2) != fmt.Sprint(l.afterKey) {
			t.Fatalf("cursor %q: re-encoded as %q, decoded to %v %v %v %v", raw, again, k2, id2, ok, errs)
		}
	})
}
