package order

import "encoding/json"

// MaxCustomerIDLen is the longest customer id an order can carry, in
// characters (not bytes). The command API refuses a longer one, so the query
// API and the hub answer a lookup of one as a client error: it cannot exist.
const MaxCustomerIDLen = 100

// CustomerOf returns the customer an event names, from its stored data:
// only OrderCreated names one (ok is false for any other type, and for data
// that does not decode). Readers that route by customer (the hub's
// customer:<id> channels) use it instead of knowing the event's shape.
func CustomerOf(eventType string, data []byte) (customerID string, ok bool) {
	if eventType != NameOrderCreated {
		return "", false
	}
	var e OrderCreated
	if json.Unmarshal(data, &e) != nil {
		return "", false
	}
	return e.CustomerID, true
}
