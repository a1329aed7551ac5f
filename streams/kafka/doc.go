// Package kafka moves messages between orderflow and Kafka with
// segmentio/kafka-go, behind watermill's message.Publisher and
// message.Subscriber so the Router, its middleware and its poison queue
// work unchanged.
//
//   - broker.go: the embedded single-node broker (kfake over TCP), in memory
//     only, with Pause/Resume to simulate outages; broker_groups.go expires
//     the consumer-group members kfake would keep for ever (one whose
//     process died while its join waited for a rebalance).
//   - topics.go: EnsureTopics creates missing topics and never alters
//     existing ones.
//   - config.go: brokers, client id, TLS and SASL, turned into kafka-go
//     Transport/Dialer; String redacts secrets.
//   - publisher.go: synchronous, RequireAll, key from metadata.
//   - subscriber.go: a watermill Subscriber, one message per partition at a
//     time; with a consumer group it commits after each ack, without one it
//     reads everything (the WebSocket hub's mode).
//   - batch.go: BatchConsumer, a consumer group member that hands the
//     messages of all its partitions to one handler in bounded batches and
//     commits offsets by interval (the projector's consumer);
//     batch_config.go its configuration, batch_progress.go each
//     partition's progress (what it fetched and handled, its lag).
//   - group.go: what both share: group membership, partition readers, the
//     Kafka-to-watermill message conversion.
//   - router.go: a watermill Router with the project's middleware
//     (recoverer, retry, poison queue, correlation logger).
//
// Goroutines, queues, ordering and delivery of both consumers:
// DESIGN.md. Tests run against a kfake broker over TCP: internal/testenv.
package kafka
