package hub

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/orderflow/orderflow/order"
)

// FuzzClientFrame: no client frame panics the parser; what it accepts
// re-encodes to a frame it accepts as the same, and an accepted channel
// name is one of the three shapes, with a canonical order id or a bounded,
// printable customer id.
func FuzzClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"subscribe","channel":"orders","since":41}`,
		`{"type":"subscribe","channel":"order:01JD4T0S6V1N2M3P4Q5R6S7T8V"}`,
		`{"type":"subscribe","channel":"order:01jd4t0s6v1n2m3p4q5r6s7t8v"}`,
		`{"type":"unsubscribe","channel":"customer:c-42"}`,
		`{"type":"subscribe","channel":"customer:\u0000"}`,
		`{"type":"subscribe","channel":"orders","sinse":3}`,
		`{"type":"subscribe","channel":"orders","since":1.5}`,
		`{"type":"subscribe"} {}`, `[1,2]`, `not json`, `{}`, ``, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeClientFrame(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(fr)
		if err != nil {
			t.Fatal(err)
		}
		fr2, err := decodeClientFrame(again)
		if err != nil || fr2.Type != fr.Type || fr2.Channel != fr.Channel || (fr2.Since == nil) != (fr.Since == nil) ||
			(fr.Since != nil && *fr2.Since != *fr.Since) {
			t.Fatalf("%q re-encoded as %s decodes to %+v, %v", b, again, fr2, err)
		}
		cn, err := parseChannel(fr.Channel)
		if err != nil {
			return
		}
		switch cn.kind {
		case kindAll:
			if cn.name != chanAll {
				t.Fatalf("channel %q accepted as orders", cn.name)
			}
		case kindOrder:
			if cn.name != prefixOrder+cn.order.String() {
				t.Fatalf("channel %q accepted for order %s", cn.name, cn.order)
			}
		case kindCustomer:
			id, ok := strings.CutPrefix(cn.name, prefixCustomer)
			if !ok || id == "" || utf8.RuneCountInString(id) > order.MaxCustomerIDLen || strings.IndexFunc(id, unicode.IsControl) >= 0 {
				t.Fatalf("customer channel %q accepted", cn.name)
			}
		}
	})
}
