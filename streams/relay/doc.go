// Package relay is the outbox publisher: it moves every committed event from
// the event store (the outbox) to a Kafka topic, at least once, in per-stream
// version order, with the stream id as the key, each message signed
// (Config.Signer; streams/envelope has what is signed and why).
//
// Run one relay role per process; any number of processes may run it, and a
// Postgres session advisory lock elects the one that publishes. DESIGN.md in
// this directory has the goroutines, guarantees and the ordering argument;
// topic.go the fresh-topic rule (a topic that had to be created, or that is
// empty while the checkpoint says otherwise, is republished from position
// 0).
package relay
