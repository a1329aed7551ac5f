// Package order is the pure order domain shared by every side of the CQRS
// split: commands decide with it, projections build read models with it and
// queries fold history with it to answer "what did this order look like at
// time T". It does no I/O and never reads the clock; every timestamp in an
// event was chosen by the decision that produced it.
//
// The model:
//
//   - Events are facts, each a concrete struct with a stable name constant
//     (the stored "type") and snake_case JSON fields. Names and field names
//     are a contract with the event store, Kafka consumers and analysts'
//     exports: never rename, only add a new schema version with an upcast.
//   - A Registry, built explicitly by NewRegistry and passed down from main,
//     maps names to codecs and schema versions. Decode upcasts old schema
//     versions step by step to the current one, then decodes strictly:
//     unknown types, unknown fields, missing fields and wrongly-cased field
//     names are errors, because a silently-zeroed field in a fact would be
//     folded into every read model forever.
//   - Readers of stored events use Registry.Apply (to fold) or
//     Registry.Current (to show them in the current schema); read.go states
//     the one rule where they differ, for event types this code does not
//     know: a fold fails, a reader that shows events passes them through.
//   - State is the left fold of an order's events. Apply never fails: events
//     are facts already accepted, so the fold records them even when they look
//     odd (a removal of an unknown SKU is a no-op). Validation lives in the
//     decisions (package commands), before any event exists.
//   - Money is int64 minor units of the order's ISO 4217 currency. Products
//     and sums are checked (LineTotal, AddMinor); an overflow is an error,
//     never a wrapped negative amount.
package order
