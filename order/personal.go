package order

// The JSON names of the personal-data fields, the same in the events that
// carry them (OrderCreated, ShippingAddressChanged) and in State. The store
// holds them sealed (internal/pii), bound to the field's name; readers that
// show data open them, and show Erased when the customer's key is gone.
const (
	FieldEmail           = "email"
	FieldShippingAddress = "shipping_address"
)

// PersonalFields lists them.
var PersonalFields = []string{FieldEmail, FieldShippingAddress}

// Erased is what every reader shows in place of a personal field whose
// customer's data was erased, and what the fold holds after
// PersonalDataErased.
const Erased = "[erased]"

// erase is the fold's erasure of one field: none stays none.
func erase(v string) string {
	if v == "" {
		return ""
	}
	return Erased
}
