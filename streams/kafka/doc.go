// Package kafka moves messages between orderflow and Kafka with
// segmentio/kafka-go, behind watermill's message.Publisher and
// message.Subscriber so the Router, its middleware and its poison queue
// work unchanged.
//
//   - broker.go: the embedded single-node broker (kfake over TCP), in memory
//     only, with Pause/Resume to simulate outages.
//   - topics.go: EnsureTopics creates missing topics and never alters
//     existing ones.
//   - config.go: brokers, client id, TLS and SASL, turned into kafka-go
//     Transport/Dialer; String redacts secrets.
//   - publisher.go: synchronous, RequireAll, key from metadata.
//   - subscriber.go: consumer group with one goroutine per partition and
//     commit-after-ack, or group-less read-everything mode (see DESIGN).
//   - router.go: a watermill Router with the project's middleware
//     (recoverer, retry, poison queue, correlation logger).
//
// Tests run against a kfake broker over TCP: internal/testenv.
package kafka
