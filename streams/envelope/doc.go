// Package envelope is the Kafka form of an event: the message the relay
// publishes (key, JSON envelope, headers), its signature, and the check
// every consumer of orderflow makes before it believes one.
//
// # Why sign
//
// The events topic is shared infrastructure: whoever can produce to it (a
// service with broad ACLs, a mis-pointed tool, an intruder on the Kafka
// network) could otherwise write an order's history. A projection applies
// the next version it sees and then skips the real one as a redelivery; the
// hub's sequencer would take a position of 2^62 and then drop every real
// event below it. Kafka's own ACLs decide who may produce; the signature
// decides what a consumer believes, whoever produced it.
//
// # What is signed
//
// The relay signs every message with HMAC-SHA256 under a key it shares
// with the consumers. The MAC covers, in this order, the message key (the
// order id) and the headers type, event_id, stream_type, version and
// position, then the value (the JSON envelope, byte for byte):
//
//	input = "orderflow-signature-v1"
//	        || for each field: uint32 big-endian length || bytes
//
// A missing header counts as an empty field. The result goes into the
// signature header as "v1:<key id>:<MAC, base64url without padding>".
// correlation_id, traceparent and tracestate are not signed: they are
// copies of the signed envelope's metadata (correlation_id, traceparent,
// tracestate) for tools that filter or trace without decoding the value,
// and nothing decides on them; orderflow's own consumers read the trace
// context from the envelope. The signing input is unchanged by them. The topic, partition,
// offset and timestamp are not signed either: a mirror may rename the
// topic, and where a message sits decides nothing a consumer does (see
// replays below).
//
// Signer and Verifier build that input with the same function (input.go),
// from the same header names (message.go): there is one definition.
//
// # Verification
//
// Verifier refuses a message that has no signature (ReasonUnsigned), whose
// signature header does not parse or that carries a signed header twice
// (ReasonMalformed: which copy would a consumer read?), whose key id is not
// in its set (ReasonUnknownKey: never configured, or removed by a
// rotation), or whose MAC does not match (ReasonBadSignature). The
// projector dead-letters a refused message at once (a forgery does not get
// better with retries), the hub drops it; both count it in
// kafka_rejected_messages_total{consumer,reason} and log it, at most once
// per LogInterval (Refusals).
//
// # Replays
//
// A signature proves who wrote a message, not when. Anyone who can read
// and produce to the topic can copy a real message, to any partition.
// That is harmless by construction: a copy is indistinguishable from
// Kafka's own at-least-once redelivery, and every consumer already keeps
// only the next version of an order (projections) or the next global
// position (the hub), so an old event, however often it comes back,
// changes nothing.
//
// # Keys and rotation
//
// A Verifier accepts a set of keys, a Signer signs with one of them, and
// the signature names its key id, so a key is rotated without a moment in
// which anything real is refused: deploy the new key to every verifier
// (the set old+new), then have the relays sign with it, then remove the
// old one once no message signed with it will be read again. The runbook,
// with the configuration, is in the README ("Signed events").
package envelope
