package kafka

import (
	"context"
	"errors"
	"fmt"

	kafkago "github.com/segmentio/kafka-go"
)

// DefaultTopic is the events topic: every committed event, keyed by its
// stream (order) id.
const DefaultTopic = "orders.events"

const dlqSuffix = ".dlq"

// DLQTopic names the dead-letter topic of an events topic: the events a
// consumer gave up on, with the error in the reason_poisoned header.
func DLQTopic(topic string) string { return topic + dlqSuffix }

// TopicSpec is the shape a topic must have.
type TopicSpec struct {
	Name string
	// Partitions must be >= 1. It bounds consumer parallelism and fixes the
	// key → partition mapping, so it is never changed behind anyone's back.
	Partitions int
	// ReplicationFactor must be >= 1 (1 for the embedded broker, 3 in
	// production).
	ReplicationFactor int
}

// ErrTopicMismatch is wrapped by the error EnsureTopics returns when an
// existing topic does not have the partition count asked for.
var ErrTopicMismatch = errors.New("existing topic differs from spec")

// TopicMismatchError says which topic differs, and how.
type TopicMismatchError struct {
	Topic      string
	Want, Have int // partitions
}

func (e *TopicMismatchError) Error() string {
	return fmt.Sprintf("topic %s has %d partitions, spec wants %d (not altered: changing the count remaps keys to partitions and breaks per-order ordering)", e.Topic, e.Have, e.Want)
}

func (e *TopicMismatchError) Unwrap() error { return ErrTopicMismatch }

// EnsureTopics creates the topics of specs that do not exist yet. It never
// alters an existing topic: if one has a different partition count, the
// returned error wraps a *TopicMismatchError for it (errors.Is
// ErrTopicMismatch), after the missing topics have been created. A topic
// created concurrently by someone else counts as existing.
func EnsureTopics(ctx context.Context, cfg Config, specs ...TopicSpec) error {
	if len(specs) == 0 {
		return nil
	}
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		if s.Name == "" || s.Partitions < 1 || s.ReplicationFactor < 1 {
			return fmt.Errorf("ensure topics: invalid spec %+v", s)
		}
		names = append(names, s.Name)
	}
	tr, err := cfg.Transport()
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	client := &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: tr}

	have, err := partitionCounts(ctx, client, names)
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	var errs []error
	var create []kafkago.TopicConfig
	for _, s := range specs {
		n, ok := have[s.Name]
		switch {
		case !ok:
			create = append(create, kafkago.TopicConfig{
				Topic:             s.Name,
				NumPartitions:     s.Partitions,
				ReplicationFactor: s.ReplicationFactor,
			})
		case n != s.Partitions:
			errs = append(errs, &TopicMismatchError{Topic: s.Name, Want: s.Partitions, Have: n})
		}
	}
	if len(create) > 0 {
		resp, err := client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: create})
		if err != nil {
			return fmt.Errorf("ensure topics: create: %w", err)
		}
		for name, e := range resp.Errors {
			if e != nil && !errors.Is(e, kafkago.TopicAlreadyExists) {
				errs = append(errs, fmt.Errorf("ensure topics: create %s: %w", name, e))
			}
		}
	}
	return errors.Join(errs...)
}

// partitionCounts returns the partition count of each named topic that
// exists; unknown topics are left out.
func partitionCounts(ctx context.Context, client *kafkago.Client, names []string) (map[string]int, error) {
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: names})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	out := make(map[string]int, len(names))
	for _, t := range md.Topics {
		switch {
		case t.Error == nil:
			out[t.Name] = len(t.Partitions)
		case errors.Is(t.Error, kafkago.UnknownTopicOrPartition):
		default:
			return nil, fmt.Errorf("metadata of %s: %w", t.Name, t.Error)
		}
	}
	return out, nil
}

// topicPartitions lists the partition ids of topic, asking a broker
// directly: a Transport's cached metadata may predate the topic.
func topicPartitions(ctx context.Context, cfg Config, d *kafkago.Dialer, topic string) ([]int, error) {
	var errs []error
	for _, addr := range cfg.Brokers {
		parts, err := d.LookupPartitions(ctx, "tcp", addr, topic)
		if err != nil {
			errs = append(errs, err)
			if errors.Is(err, kafkago.UnknownTopicOrPartition) {
				break
			}
			continue
		}
		ids := make([]int, 0, len(parts))
		for _, p := range parts {
			ids = append(ids, p.ID)
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("topic %s: %w", topic, kafkago.UnknownTopicOrPartition)
		}
		return ids, nil
	}
	return nil, fmt.Errorf("topic %s: %w", topic, errors.Join(errs...))
}
