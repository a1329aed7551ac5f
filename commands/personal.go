package commands

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/orderflow/orderflow/order"
)

// Limits of the personal-data fields (internal/pii/DESIGN.md).
const (
	// MaxEmailLen is RFC 5321's limit of a forward path's address.
	MaxEmailLen = 254
	// MaxShippingAddressLen bounds a postal address of a few lines.
	MaxShippingAddressLen = 500
	// MaxShippingAddressLines bounds its lines.
	MaxShippingAddressLines = 8
)

// ChangeShippingAddress replaces the shipping address of an order that has
// not shipped.
type ChangeShippingAddress struct {
	ShippingAddress string `json:"shipping_address"`
}

// ErasePersonalData records that the order's customer was forgotten. It is
// not a request body: the erasure (Service.ErasePersonalData) issues it for
// each of the customer's orders.
type ErasePersonalData struct{}

// Validate checks the command's input alone.
func (c ChangeShippingAddress) Validate() error {
	var f fieldErrors
	if strings.TrimSpace(c.ShippingAddress) == "" {
		f.add("shipping_address", "is required")
	}
	f.shippingAddress("shipping_address", c.ShippingAddress)
	return f.err()
}

// Validate checks nothing: the command has no input.
func (ErasePersonalData) Validate() error { return nil }

// Decide emits ShippingAddressChanged until the order ships; the address
// of an order whose personal data was erased cannot be set again.
func (c ChangeShippingAddress) Decide(s order.State, now time.Time) ([]order.Event, error) {
	if err := existing(s, c); err != nil {
		return nil, err
	}
	switch {
	case s.Status == order.StatusShipped || s.Status == order.StatusDelivered || s.Status == order.StatusCancelled:
		return nil, ruleErr(RuleAddressChangeAfterShipment, fmt.Sprintf("the address of a %s order cannot change", s.Status))
	case s.ShippingAddress == order.Erased || s.Email == order.Erased:
		return nil, ruleErr(RulePersonalDataErased, "this order's personal data was erased; create a new order")
	}
	return []order.Event{order.ShippingAddressChanged{ShippingAddress: c.ShippingAddress, ChangedAt: now.UTC()}}, nil
}

// Decide emits PersonalDataErased.
func (c ErasePersonalData) Decide(s order.State, now time.Time) ([]order.Event, error) {
	if err := existing(s, c); err != nil {
		return nil, err
	}
	return []order.Event{order.PersonalDataErased{ErasedAt: now.UTC()}}, nil
}

// email checks an optional email address: a bare addr-spec
// (local@domain, no display name), at most MaxEmailLen bytes.
func (f *fieldErrors) email(field, v string) {
	if v == "" {
		return
	}
	a, err := mail.ParseAddress(v)
	switch {
	case len(v) > MaxEmailLen:
		f.add(field, "must be at most %d characters", MaxEmailLen)
	case err != nil || a.Address != v || a.Name != "":
		f.add(field, "must be an email address such as ada@example.com, without a display name")
	}
}

// shippingAddress checks an optional postal address: 1..MaxShippingAddressLen
// characters on at most MaxShippingAddressLines lines separated by "\n",
// printable, and never the erased marker.
func (f *fieldErrors) shippingAddress(field, v string) {
	switch {
	case v == "":
	case !utf8.ValidString(v):
		f.add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(v) > MaxShippingAddressLen:
		f.add(field, "must be at most %d characters", MaxShippingAddressLen)
	case strings.Count(v, "\n") >= MaxShippingAddressLines:
		f.add(field, "must have at most %d lines", MaxShippingAddressLines)
	case strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' && r != '\n' }) >= 0:
		f.add(field, "must contain only printable characters and line breaks (\\n)")
	case strings.TrimSpace(v) == "" || v == order.Erased:
		f.add(field, "must be a postal address")
	}
}
