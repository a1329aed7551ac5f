package order_test

import (
	"testing"

	"github.com/orderflow/orderflow/order"
)

func TestCurrencies(t *testing.T) {
	tests := []struct {
		name      string
		code      string
		valid     bool
		nonTender bool
		digits    int
	}{
		{name: "the euro is a currency with cents", code: "EUR", valid: true, digits: 2},
		{name: "the yen has no minor unit", code: "JPY", valid: true, digits: 0},
		{name: "the Kuwaiti dinar has three decimals", code: "KWD", valid: true, digits: 3},
		{name: "a real X-code currency is accepted", code: "XOF", valid: true, digits: 0},
		{name: "the Caribbean guilder introduced in 2025 is accepted", code: "XCG", valid: true, digits: 2},
		{name: "Zimbabwe Gold is accepted", code: "ZWG", valid: true, digits: 2},
		{name: "lower case is not a code", code: "usd"},
		{name: "a made-up code is refused", code: "ABC"},
		{name: "a withdrawn code is refused", code: "HRK"},
		{name: "the no-currency code is real but not money", code: "XXX", nonTender: true},
		{name: "the testing code is real but not money", code: "XTS", nonTender: true},
		{name: "gold is real but not money", code: "XAU", nonTender: true},
		{name: "a fund code is real but not money", code: "USN", nonTender: true},
		{name: "the empty string is not a code", code: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := order.IsCurrency(tt.code); got != tt.valid {
				t.Fatalf("IsCurrency(%q) = %v", tt.code, got)
			}
			if got := order.IsNonTenderCode(tt.code); got != tt.nonTender {
				t.Fatalf("IsNonTenderCode(%q) = %v", tt.code, got)
			}
			if d, ok := order.MinorUnits(tt.code); ok != tt.valid || d != tt.digits {
				t.Fatalf("MinorUnits(%q) = %d, %v", tt.code, d, ok)
			}
		})
	}
}
