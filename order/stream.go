package order

// StreamType is the event store's stream type of an order: every order's
// events are one stream of this type, its id the order's ULID.
const StreamType = "order"
