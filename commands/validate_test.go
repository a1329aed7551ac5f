package commands

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
)

func TestValidate(t *testing.T) {
	okItem := ItemInput{SKU: "A-1.b_2", Name: "Mug", Quantity: 1, UnitPriceMinor: 0}
	okCreate := func(mut func(*CreateOrder)) CreateOrder {
		c := CreateOrder{OrderID: id, CustomerID: "c-1", Currency: "EUR", Items: []ItemInput{okItem}}
		mut(&c)
		return c
	}
	many := make([]ItemInput, MaxItems+1)
	for i := range many {
		many[i] = ItemInput{SKU: "s" + strings.Repeat("x", i%60) + string(rune('a'+i/60)), Name: "n", Quantity: 1}
	}
	tests := []struct {
		name   string
		cmd    Command
		fields []string // every field expected in the error, in order; nil means valid
	}{
		{name: "a well-formed creation is valid", cmd: okCreate(func(*CreateOrder) {})},
		{name: "a creation without items is valid", cmd: okCreate(func(c *CreateOrder) { c.Items = nil })},
		{name: "every problem of a creation is reported at once",
			cmd:    CreateOrder{Items: []ItemInput{okItem, {SKU: "bad sku", Name: "", Quantity: 0, UnitPriceMinor: -1}}},
			fields: []string{"order_id", "customer_id", "currency", "items[1].sku", "items[1].name", "items[1].quantity", "items[1].unit_price_minor"}},
		{name: "a customer id of 100 characters is valid", cmd: okCreate(func(c *CreateOrder) { c.CustomerID = strings.Repeat("é", 100) })},
		{name: "a customer id of 101 characters is refused",
			cmd: okCreate(func(c *CreateOrder) { c.CustomerID = strings.Repeat("c", 101) }), fields: []string{"customer_id"}},
		{name: "a blank customer id is refused", cmd: okCreate(func(c *CreateOrder) { c.CustomerID = "   " }), fields: []string{"customer_id"}},
		{name: "a customer id with a control character is refused",
			cmd: okCreate(func(c *CreateOrder) { c.CustomerID = "c\x001" }), fields: []string{"customer_id"}},
		{name: "a customer id that is not UTF-8 is refused",
			cmd: okCreate(func(c *CreateOrder) { c.CustomerID = "c\xff" }), fields: []string{"customer_id"}},
		{name: "a lower-case currency is refused", cmd: okCreate(func(c *CreateOrder) { c.Currency = "eur" }), fields: []string{"currency"}},
		{name: "a made-up currency is refused", cmd: okCreate(func(c *CreateOrder) { c.Currency = "QQQ" }), fields: []string{"currency"}},
		{name: "the no-currency code is refused", cmd: okCreate(func(c *CreateOrder) { c.Currency = "XXX" }), fields: []string{"currency"}},
		{name: "a real X currency is accepted", cmd: okCreate(func(c *CreateOrder) { c.Currency = "XAF" })},
		{name: "more than 100 items are refused", cmd: okCreate(func(c *CreateOrder) { c.Items = many }), fields: []string{"items"}},
		{name: "the same sku twice in a creation is refused",
			cmd: okCreate(func(c *CreateOrder) { c.Items = []ItemInput{okItem, okItem} }), fields: []string{"items[1].sku"}},
		{name: "a creation whose total overflows is refused",
			cmd: okCreate(func(c *CreateOrder) {
				c.Items = []ItemInput{{SKU: "a", Name: "A", Quantity: 1, UnitPriceMinor: math.MaxInt64}, {SKU: "b", Name: "B", Quantity: 1, UnitPriceMinor: 1}}
			}), fields: []string{"items"}},
		{name: "a creation line whose product overflows is refused",
			cmd: okCreate(func(c *CreateOrder) {
				c.Items = []ItemInput{{SKU: "a", Name: "A", Quantity: 10, UnitPriceMinor: math.MaxInt64 / 5}}
			}), fields: []string{"items[0].unit_price_minor"}},

		{name: "a sku of 64 allowed characters is valid", cmd: AddItem{SKU: strings.Repeat("a", 64), Name: "n", Quantity: 1}},
		{name: "a sku of 65 characters is refused", cmd: AddItem{SKU: strings.Repeat("a", 65), Name: "n", Quantity: 1}, fields: []string{"sku"}},
		{name: "a sku with a slash is refused", cmd: AddItem{SKU: "a/b", Name: "n", Quantity: 1}, fields: []string{"sku"}},
		{name: "a non-ASCII sku is refused", cmd: AddItem{SKU: "café", Name: "n", Quantity: 1}, fields: []string{"sku"}},
		{name: "an empty sku is refused", cmd: AddItem{Name: "n", Quantity: 1}, fields: []string{"sku"}},
		{name: "a name of 200 characters is valid", cmd: AddItem{SKU: "a", Name: strings.Repeat("ñ", 200), Quantity: 1}},
		{name: "a name of 201 characters is refused", cmd: AddItem{SKU: "a", Name: strings.Repeat("n", 201), Quantity: 1}, fields: []string{"name"}},
		{name: "a quantity of 10000 is valid", cmd: AddItem{SKU: "a", Name: "n", Quantity: MaxQuantity}},
		{name: "a quantity of 10001 is refused", cmd: AddItem{SKU: "a", Name: "n", Quantity: MaxQuantity + 1}, fields: []string{"quantity"}},
		{name: "a negative quantity is refused", cmd: AddItem{SKU: "a", Name: "n", Quantity: -1}, fields: []string{"quantity"}},
		{name: "a negative unit price is refused", cmd: AddItem{SKU: "a", Name: "n", Quantity: 1, UnitPriceMinor: -1}, fields: []string{"unit_price_minor"}},
		{name: "a line whose product overflows is refused",
			cmd: AddItem{SKU: "a", Name: "n", Quantity: 2, UnitPriceMinor: math.MaxInt64/2 + 1}, fields: []string{"unit_price_minor"}},

		{name: "removing needs a well-formed sku", cmd: RemoveItem{SKU: "no spaces"}, fields: []string{"sku"}},
		{name: "placing has no input", cmd: PlaceOrder{}},
		{name: "delivering has no input", cmd: DeliverOrder{}},
		{name: "a payment needs amount, currency and reference",
			cmd: RecordPayment{AmountMinor: -1, Currency: "", Reference: ""}, fields: []string{"amount_minor", "currency", "reference"}},
		{name: "a payment reference is bounded",
			cmd: RecordPayment{AmountMinor: 1, Currency: "EUR", Reference: strings.Repeat("r", MaxReferenceLen+1)}, fields: []string{"reference"}},
		{name: "a shipment needs carrier and tracking number", cmd: ShipOrder{}, fields: []string{"carrier", "tracking_number"}},
		{name: "carrier and tracking number are bounded",
			cmd:    ShipOrder{Carrier: strings.Repeat("c", MaxCarrierLen+1), TrackingNumber: strings.Repeat("t", MaxTrackingLen+1)},
			fields: []string{"carrier", "tracking_number"}},
		{name: "a cancellation reason is bounded", cmd: CancelOrder{Reason: strings.Repeat("r", MaxReasonLen+1)}, fields: []string{"reason"}},
		{name: "a cancellation reason with a tab is refused", cmd: CancelOrder{Reason: "a\tb"}, fields: []string{"reason"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cmd.Validate()
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want valid", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			var got []string
			for _, f := range ve.Fields {
				if f.Message == "" {
					t.Errorf("field %s has no message", f.Field)
				}
				got = append(got, f.Field)
			}
			if !reflect.DeepEqual(got, tt.fields) {
				t.Fatalf("fields = %v, want %v (%v)", got, tt.fields, err)
			}
		})
	}
}

func TestValidationErrorNamesEveryField(t *testing.T) {
	err := ShipOrder{}.Validate()
	want := "invalid command: carrier: is required; tracking_number: is required"
	if err == nil || err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err, want)
	}
	if err := (&RuleError{Rule: "r", Detail: "d"}).Error(); err != "r: d" {
		t.Fatalf("RuleError.Error() = %q", err)
	}
	if (CreateOrder{OrderID: ulid.ULID{}}).Validate() == nil {
		t.Fatal("a zero order id must be refused")
	}
}
