package commands

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/orderflow/orderflow/order"
)

// Input limits. They bound what one order can hold and what a request can
// make the server store; they are documented in the API.
const (
	MaxSKULen       = 64
	MaxNameLen      = 200
	MinQuantity     = 1
	MaxQuantity     = 10000
	MaxItems        = 100 // distinct SKUs per order
	MaxReferenceLen = 100
	MaxCarrierLen   = 100
	MaxTrackingLen  = 100
	MaxReasonLen    = 500
)

// fieldErrors collects every field problem of one command.
type fieldErrors []FieldError

func (f *fieldErrors) add(field, format string, args ...any) {
	*f = append(*f, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// err returns nil (an untyped nil, so err != nil works) or a *ValidationError.
func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return &ValidationError{Fields: f}
}

// text checks a required human-readable string: valid UTF-8, 1..max
// characters (runes, not bytes), no control or other non-printable
// characters, and not only spaces. Such strings end up in read models,
// dashboards and logs, where a control character is at best noise.
func (f *fieldErrors) text(field, v string, max int) {
	if msg := textProblem(v, max); msg != "" {
		f.add(field, "%s", msg)
	}
}

// CustomerIDProblem says what is wrong with a customer id taken from a path
// ("" when nothing is): the rule CreateOrder's customer_id follows.
func CustomerIDProblem(id string) string { return textProblem(id, order.MaxCustomerIDLen) }

func textProblem(v string, max int) string {
	switch {
	case strings.TrimSpace(v) == "":
		return "is required"
	case !utf8.ValidString(v):
		return "must be valid UTF-8"
	case utf8.RuneCountInString(v) > max:
		return fmt.Sprintf("must be at most %d characters", max)
	case strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0:
		return "must contain only printable characters"
	}
	return ""
}

// sku checks 1..64 characters of [A-Za-z0-9._-]: SKUs appear in URLs
// (DELETE /orders/{id}/items/{sku}) and in keys, so they stay plain ASCII.
func (f *fieldErrors) sku(field, v string) {
	if msg := skuProblem(v); msg != "" {
		f.add(field, "%s", msg)
	}
}

func skuProblem(v string) string {
	switch {
	case v == "":
		return "is required"
	case len(v) > MaxSKULen:
		return fmt.Sprintf("must be at most %d characters", MaxSKULen)
	case strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) >= 0:
		return "must contain only letters, digits, '.', '_' and '-'"
	}
	return ""
}

func (f *fieldErrors) currency(field, v string) {
	switch {
	case v == "":
		f.add(field, "is required")
	case order.IsNonTenderCode(v):
		f.add(field, "%q is an ISO 4217 code but not a currency orders can be priced in", v)
	case !order.IsCurrency(v):
		f.add(field, "must be an active ISO 4217 currency code such as EUR or USD (upper case)")
	}
}

// line names the fields of one line: line i of a CreateOrder
// ("items[i].sku"), or an AddItem's own (line -1: "sku"). Names are built
// only for a field that has a problem.
type line int

func (l line) field(name string) string {
	if l < 0 {
		return name
	}
	return "items[" + strconv.Itoa(int(l)) + "]." + name
}

// item checks one line. It returns the line total when the line is valid.
func (f *fieldErrors) item(l line, it ItemInput) (int64, bool) {
	before := len(*f)
	if msg := skuProblem(it.SKU); msg != "" {
		f.add(l.field("sku"), "%s", msg)
	}
	if msg := textProblem(it.Name, MaxNameLen); msg != "" {
		f.add(l.field("name"), "%s", msg)
	}
	if it.Quantity < MinQuantity || it.Quantity > MaxQuantity {
		f.add(l.field("quantity"), "must be between %d and %d", MinQuantity, MaxQuantity)
	}
	if it.UnitPriceMinor < 0 {
		f.add(l.field("unit_price_minor"), "must not be negative")
	}
	if len(*f) > before {
		return 0, false
	}
	total, err := order.LineTotal(it.Quantity, it.UnitPriceMinor)
	if err != nil {
		f.add(l.field("unit_price_minor"), "quantity × unit price exceeds the largest amount (%v)", err)
		return 0, false
	}
	return total, true
}

// Validate checks the command's input alone.
func (c CreateOrder) Validate() error {
	var f fieldErrors
	if c.OrderID.IsZero() {
		f.add("order_id", "is required")
	}
	f.text("customer_id", c.CustomerID, order.MaxCustomerIDLen)
	if strings.Contains(c.CustomerID, "@") {
		// The customer id is a pseudonym, readable everywhere (internal/pii/DESIGN.md).
		f.add("customer_id", "must be an opaque id (the identity provider's subject), not an email address")
	}
	f.currency("currency", c.Currency)
	f.email("email", c.Email)
	f.shippingAddress("shipping_address", c.ShippingAddress)
	if len(c.Items) > MaxItems {
		f.add("items", "must hold at most %d items", MaxItems)
	}
	// Duplicates are refused rather than merged: a creation request lists
	// the order's lines, and the same SKU twice is most likely a client bug.
	var first map[string]int
	if len(c.Items) > 1 {
		first = make(map[string]int, len(c.Items))
	}
	var total int64
	overflow := false
	for i, it := range c.Items {
		lt, ok := f.item(line(i), it)
		if j, dup := first[it.SKU]; dup && it.SKU != "" {
			f.add(line(i).field("sku"), "duplicates items[%d].sku; list each SKU once", j)
		} else if first != nil {
			first[it.SKU] = i
		}
		if ok && !overflow {
			var err error
			if total, err = order.AddMinor(total, lt); err != nil {
				overflow = true
				f.add("items", "the order total exceeds the largest amount (%v)", err)
			}
		}
	}
	return f.err()
}

// Validate checks the command's input alone.
func (c AddItem) Validate() error {
	var f fieldErrors
	f.item(-1, ItemInput(c))
	return f.err()
}

// Validate checks the command's input alone.
func (c RemoveItem) Validate() error {
	var f fieldErrors
	f.sku("sku", c.SKU)
	return f.err()
}

// Validate checks the command's input alone; PlaceOrder has none.
func (PlaceOrder) Validate() error { return nil }

// Validate checks the command's input alone.
func (c RecordPayment) Validate() error {
	var f fieldErrors
	if c.AmountMinor < 0 {
		f.add("amount_minor", "must not be negative")
	}
	f.currency("currency", c.Currency)
	f.text("reference", c.Reference, MaxReferenceLen)
	return f.err()
}

// Validate checks the command's input alone.
func (c ShipOrder) Validate() error {
	var f fieldErrors
	f.text("carrier", c.Carrier, MaxCarrierLen)
	f.text("tracking_number", c.TrackingNumber, MaxTrackingLen)
	return f.err()
}

// Validate checks the command's input alone; DeliverOrder has none.
func (DeliverOrder) Validate() error { return nil }

// Validate checks the command's input alone. A reason is required: a
// cancellation is read later by support and by the refund process.
func (c CancelOrder) Validate() error {
	var f fieldErrors
	f.text("reason", c.Reason, MaxReasonLen)
	return f.err()
}
