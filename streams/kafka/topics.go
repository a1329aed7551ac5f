package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"

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
	// MinInsyncReplicas is the topic's min.insync.replicas: how many
	// replicas must hold a message before a produce with acks=all (the
	// relay's) is acknowledged. 0 leaves the broker's default and checks
	// nothing; otherwise 1 to ReplicationFactor.
	MinInsyncReplicas int
}

func (s TopicSpec) valid() bool {
	return s.Name != "" && s.Partitions >= 1 && s.ReplicationFactor >= 1 &&
		s.MinInsyncReplicas >= 0 && s.MinInsyncReplicas <= s.ReplicationFactor
}

// ErrTopicMismatch is wrapped by the error EnsureTopics returns when an
// existing topic does not have the shape asked for: another partition
// count (*TopicMismatchError) or less durability (*UnderReplicatedError).
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

// UnderReplicatedError says that an existing topic has fewer replicas (on
// some partition) or a lower min.insync.replicas than the spec: an
// acknowledged message survives fewer broker losses than configured.
type UnderReplicatedError struct {
	Topic                      string
	WantReplicas, HaveReplicas int
	// WantMinInsync and HaveMinInsync are zero when not checked.
	WantMinInsync, HaveMinInsync int
}

func (e *UnderReplicatedError) Error() string {
	have, want := fmt.Sprintf("replication factor %d", e.HaveReplicas), fmt.Sprintf("%d", e.WantReplicas)
	if e.WantMinInsync > 0 {
		have += fmt.Sprintf(", min.insync.replicas %d", e.HaveMinInsync)
		want += fmt.Sprintf(" and %d", e.WantMinInsync)
	}
	return fmt.Sprintf("topic %s is under-replicated: %s, configured %s (not altered: raise them with kafka-reassign-partitions and kafka-configs)",
		e.Topic, have, want)
}

func (e *UnderReplicatedError) Unwrap() error { return ErrTopicMismatch }

// EnsureTopics creates the topics of specs that do not exist yet. It never
// alters an existing topic: if one has another partition count, fewer
// replicas or a lower min.insync.replicas, the returned error wraps a
// *TopicMismatchError or *UnderReplicatedError for it (errors.Is
// ErrTopicMismatch), after the missing topics have been created. A topic
// created concurrently by someone else counts as existing.
func EnsureTopics(ctx context.Context, cfg Config, specs ...TopicSpec) error {
	return topics(ctx, cfg, true, specs)
}

// CheckTopics reports, as EnsureTopics does, every topic of specs that is
// missing or differs from its spec, and creates nothing: the readiness
// check of a process that relies on topics someone else created.
func CheckTopics(ctx context.Context, cfg Config, specs ...TopicSpec) error {
	return topics(ctx, cfg, false, specs)
}

func topics(ctx context.Context, cfg Config, create bool, specs []TopicSpec) error {
	if len(specs) == 0 {
		return nil
	}
	for _, s := range specs {
		if !s.valid() {
			return fmt.Errorf("ensure topics: invalid spec %+v", s)
		}
	}
	tr, err := cfg.Transport()
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	client := &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: tr}

	have, err := describeTopics(ctx, client, specs)
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	var (
		errs    []error
		missing []kafkago.TopicConfig
	)
	for _, s := range specs {
		h, ok := have[s.Name]
		switch {
		case !ok && !create:
			errs = append(errs, fmt.Errorf("topic %s does not exist", s.Name))
		case !ok:
			missing = append(missing, topicConfig(s))
		case h.partitions != s.Partitions:
			errs = append(errs, &TopicMismatchError{Topic: s.Name, Want: s.Partitions, Have: h.partitions})
		case h.replicas < s.ReplicationFactor || h.minInsync < s.MinInsyncReplicas:
			errs = append(errs, &UnderReplicatedError{Topic: s.Name, WantReplicas: s.ReplicationFactor, HaveReplicas: h.replicas,
				WantMinInsync: s.MinInsyncReplicas, HaveMinInsync: h.minInsync})
		}
	}
	if len(missing) > 0 {
		resp, err := client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: missing})
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

func topicConfig(s TopicSpec) kafkago.TopicConfig {
	tc := kafkago.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
	if s.MinInsyncReplicas > 0 {
		tc.ConfigEntries = []kafkago.ConfigEntry{{ConfigName: minInsyncReplicas, ConfigValue: strconv.Itoa(s.MinInsyncReplicas)}}
	}
	return tc
}

const minInsyncReplicas = "min.insync.replicas"

// topicShape is what a broker says an existing topic is.
type topicShape struct {
	partitions int
	replicas   int // the fewest of any partition
	minInsync  int // 0 unless the spec asks for it
}

// describeTopics returns the shape of each topic of specs that exists;
// unknown topics are left out. min.insync.replicas is asked for only
// where a spec sets it (one DescribeConfigs request for them all).
func describeTopics(ctx context.Context, client *kafkago.Client, specs []TopicSpec) (map[string]topicShape, error) {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: names})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	out := make(map[string]topicShape, len(names))
	for _, t := range md.Topics {
		switch {
		case t.Error == nil:
			sh := topicShape{partitions: len(t.Partitions)}
			for i, p := range t.Partitions {
				if i == 0 || len(p.Replicas) < sh.replicas {
					sh.replicas = len(p.Replicas)
				}
			}
			out[t.Name] = sh
		case errors.Is(t.Error, kafkago.UnknownTopicOrPartition):
		default:
			return nil, fmt.Errorf("metadata of %s: %w", t.Name, t.Error)
		}
	}
	var resources []kafkago.DescribeConfigRequestResource
	for _, s := range specs {
		if _, ok := out[s.Name]; ok && s.MinInsyncReplicas > 0 {
			resources = append(resources, kafkago.DescribeConfigRequestResource{
				ResourceType: kafkago.ResourceTypeTopic, ResourceName: s.Name, ConfigNames: []string{minInsyncReplicas}})
		}
	}
	if len(resources) == 0 {
		return out, nil
	}
	dc, err := client.DescribeConfigs(ctx, &kafkago.DescribeConfigsRequest{Resources: resources})
	if err != nil {
		return nil, fmt.Errorf("describe configs: %w", err)
	}
	for _, r := range dc.Resources {
		if r.Error != nil {
			return nil, fmt.Errorf("describe configs of %s: %w", r.ResourceName, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName != minInsyncReplicas {
				continue
			}
			n, err := strconv.Atoi(e.ConfigValue)
			if err != nil {
				return nil, fmt.Errorf("%s of %s: %q is not a number", minInsyncReplicas, r.ResourceName, e.ConfigValue)
			}
			sh := out[r.ResourceName]
			sh.minInsync = n
			out[r.ResourceName] = sh
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
