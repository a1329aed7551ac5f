package commands

import (
	"errors"
	"strings"
)

// Sentinel errors callers branch on (the HTTP layer maps them to 404 / 409).
var (
	// ErrOrderNotFound: a command other than CreateOrder for an order with
	// no events.
	ErrOrderNotFound = errors.New("order not found")
	// ErrOrderExists: CreateOrder for an order that already has events.
	ErrOrderExists = errors.New("order already exists")
	// ErrItemNotFound: RemoveItem for a SKU that is not on the order. It is
	// wrapped with the SKU; test it with errors.Is.
	ErrItemNotFound = errors.New("item not found on order")
)

// FieldError is one problem with one field of a command. Field is a JSON path
// into the command body, such as "items[2].quantity".
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError reports everything wrong with a command's input at once,
// so a client can fix all of it in one round trip. It depends only on the
// command, never on the order's state.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid command: ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + ": " + f.Message)
	}
	return b.String()
}

// RuleError is a well-formed command that the order's current state does not
// allow. Rule is a stable kebab-case identifier (see the Rule constants)
// that clients and the problem+json "type" may rely on; Detail is for humans.
type RuleError struct {
	Rule   string
	Detail string
}

func (e *RuleError) Error() string { return e.Rule + ": " + e.Detail }

// Rule identifiers. They are part of the API: never change one.
const (
	RuleItemsRequireDraft       = "items-require-draft-order"
	RuleItemConflict            = "item-conflicts-with-existing-line"
	RuleItemQuantityLimit       = "item-quantity-limit-exceeded"
	RuleItemLimit               = "order-item-limit-exceeded"
	RuleTotalOverflow           = "order-total-overflow"
	RulePlaceRequiresDraft      = "place-requires-draft-order"
	RulePlaceRequiresItems      = "place-requires-items"
	RulePaymentRequiresPlaced   = "payment-requires-placed-order"
	RulePaymentCurrencyMismatch = "payment-currency-mismatch"
	RulePaymentAmountMismatch   = "payment-amount-mismatch"
	RuleShipRequiresPaid        = "ship-requires-paid-order"
	RuleDeliverRequiresShipped  = "deliver-requires-shipped-order"
	RuleCancelAfterShipment     = "cancel-not-allowed-after-shipment"
	RuleAlreadyCancelled        = "order-already-cancelled"
	RuleEventLimit              = "order-event-limit-exceeded"
	// Personal data (personal.go).
	RuleAddressChangeAfterShipment = "address-change-not-allowed-after-shipment"
	RulePersonalDataErased         = "personal-data-erased"
)

// allRules lists every rule; a test checks each one is exercised.
var allRules = []string{
	RuleItemsRequireDraft, RuleItemConflict, RuleItemQuantityLimit, RuleItemLimit,
	RuleTotalOverflow, RulePlaceRequiresDraft, RulePlaceRequiresItems,
	RulePaymentRequiresPlaced, RulePaymentCurrencyMismatch, RulePaymentAmountMismatch,
	RuleShipRequiresPaid, RuleDeliverRequiresShipped, RuleCancelAfterShipment, RuleAlreadyCancelled,
	RuleEventLimit,
}

func ruleErr(rule, detail string) error { return &RuleError{Rule: rule, Detail: detail} }
