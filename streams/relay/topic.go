package relay

import (
	"context"
	"errors"
	"fmt"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/streams/kafka"
)

// The fresh-topic rule.
//
// The embedded broker keeps nothing across restarts, and a real cluster can
// lose a topic to an operator. Either way the checkpoint in Postgres then
// claims messages that are no longer in Kafka, and consumers that start
// from the beginning would silently miss them. So, every time it becomes
// leader and before it publishes, the relay checks its topic:
//
//   - the topic does not exist: the relay creates it (kafka.EnsureTopics)
//     and republishes from position 0;
//   - the topic exists but every partition's end offset is 0 while the
//     checkpoint is above 0: it was recreated empty (by another client's
//     EnsureTopics, say a consumer that started first); republish from 0.
//
// End offsets, not start offsets: retention deletes old records but never
// lowers the end offset, so a long-lived topic is never mistaken for a new
// one. Republishing means duplicates for nobody (the topic is empty) and
// costs one pass over the store.
//
// EnsureTopics does not report which topics it created, so existence is
// checked here first with a metadata request.
func (r *Relay) ensureTopic(ctx context.Context, checkpoint int64) (fresh bool, err error) {
	// A transport of its own: a transport caches metadata (MetadataTTL, 6s),
	// and the writer's must not remember "no such topic" from this check.
	tr, err := r.cfg.Kafka.Transport()
	if err != nil {
		return false, err
	}
	defer tr.CloseIdleConnections()
	client := &kafkago.Client{Addr: kafkago.TCP(r.cfg.Kafka.Brokers...), Transport: tr}
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{r.cfg.Topic}})
	if err != nil {
		return false, fmt.Errorf("topic metadata: %w", err)
	}
	var partitions []int
	exists := false
	for _, t := range md.Topics {
		if t.Name != r.cfg.Topic {
			continue
		}
		switch {
		case t.Error == nil:
			exists = true
			for _, p := range t.Partitions {
				partitions = append(partitions, p.ID)
			}
		case errors.Is(t.Error, kafkago.UnknownTopicOrPartition):
		default:
			return false, fmt.Errorf("topic metadata %s: %w", t.Name, t.Error)
		}
	}
	// Always called: it also refuses a topic with another partition count,
	// which would remap keys and break per-order ordering. A topic with
	// fewer replicas than configured is published to all the same (each
	// message is as durable as the topic allows, and stopping would hold
	// every event back); it is logged here and shown by readiness.
	var under *kafka.UnderReplicatedError
	err = kafka.EnsureTopics(ctx, r.cfg.Kafka, kafka.TopicSpec{
		Name: r.cfg.Topic, Partitions: r.cfg.Partitions,
		ReplicationFactor: r.cfg.ReplicationFactor, MinInsyncReplicas: r.cfg.MinInsyncReplicas,
	})
	switch {
	case errors.As(err, &under) && !errors.As(err, new(*kafka.TopicMismatchError)):
		r.log.Warn("relay: publishing to an under-replicated topic", "err", err)
	case err != nil:
		return false, err
	}
	if !exists {
		return true, nil
	}
	if checkpoint == 0 {
		return false, nil
	}
	req := make([]kafkago.OffsetRequest, len(partitions))
	for i, p := range partitions {
		req[i] = kafkago.LastOffsetOf(p)
	}
	res, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{r.cfg.Topic: req}})
	if err != nil {
		return false, fmt.Errorf("topic end offsets: %w", err)
	}
	for _, po := range res.Topics[r.cfg.Topic] {
		if po.Error != nil {
			return false, fmt.Errorf("topic end offset of partition %d: %w", po.Partition, po.Error)
		}
		if po.LastOffset > 0 {
			return false, nil
		}
	}
	return true, nil
}
