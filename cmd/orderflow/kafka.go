package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/orderflow/orderflow/streams/kafka"
)

// kafkaConfig is the Kafka part of the configuration.
type kafkaConfig struct {
	brokers      string
	embeddedAddr string
	topic        string
	partitions   int
	// replicationFactor and minInsync shape the topics orderflow creates
	// and are checked against existing ones; 0 is the default of the
	// cluster kind (replicas).
	replicationFactor int
	minInsync         int
	session           time.Duration
	tls               kafka.TLSConfig
	sasl              kafka.SASLConfig
	signing           signingConfig
}

func (k *kafkaConfig) register(f *flags) {
	f.string(&k.brokers, "kafka-brokers", "KAFKA_BROKERS", "", "comma-separated Kafka bootstrap brokers; empty starts the embedded broker")
	f.string(&k.embeddedAddr, "kafka-embedded-addr", "ORDERFLOW_KAFKA_EMBEDDED_ADDR", kafka.DefaultBrokerAddr, "listen address of the embedded broker")
	f.string(&k.topic, "kafka-topic", "ORDERFLOW_KAFKA_TOPIC", kafka.DefaultTopic, "events topic (the DLQ is <topic>.dlq)")
	f.int(&k.partitions, "kafka-partitions", "ORDERFLOW_KAFKA_PARTITIONS", 12, "partitions of the events topic when orderflow creates it")
	f.int(&k.replicationFactor, "kafka-replication-factor", "ORDERFLOW_KAFKA_REPLICATION_FACTOR", 0, "replicas of each topic orderflow creates, and the fewest an existing topic may have before it is reported (default 3 with KAFKA_BROKERS, 1 with the embedded broker)")
	f.int(&k.minInsync, "kafka-min-insync-replicas", "ORDERFLOW_KAFKA_MIN_INSYNC_REPLICAS", 0, "min.insync.replicas of each topic orderflow creates, and the lowest an existing topic may have before it is reported: replicas that hold a message before the relay's acks=all produce succeeds (default 2 with KAFKA_BROKERS, capped at the replication factor; 1 with the embedded broker)")
	f.duration(&k.session, "kafka-session-timeout", "ORDERFLOW_KAFKA_SESSION_TIMEOUT", 30*time.Second, "consumer group session timeout: how long a crashed projector's partitions wait before the other projectors take them over")
	f.bool(&k.tls.Enabled, "kafka-tls", "ORDERFLOW_KAFKA_TLS", false, "connect to Kafka over TLS")
	f.string(&k.tls.CAFile, "kafka-tls-ca-file", "ORDERFLOW_KAFKA_TLS_CA_FILE", "", "PEM CA bundle to trust (default: system roots)")
	f.string(&k.tls.CertFile, "kafka-tls-cert-file", "ORDERFLOW_KAFKA_TLS_CERT_FILE", "", "client certificate for mutual TLS")
	f.string(&k.tls.KeyFile, "kafka-tls-key-file", "ORDERFLOW_KAFKA_TLS_KEY_FILE", "", "client key for mutual TLS")
	f.string(&k.tls.ServerName, "kafka-tls-server-name", "ORDERFLOW_KAFKA_TLS_SERVER_NAME", "", "name to verify in the broker certificate")
	f.string(&k.sasl.Mechanism, "kafka-sasl-mechanism", "ORDERFLOW_KAFKA_SASL_MECHANISM", "", "SASL mechanism: plain, scram-sha-256 or scram-sha-512")
	f.string(&k.sasl.Username, "kafka-sasl-username", "ORDERFLOW_KAFKA_SASL_USERNAME", "", "SASL user name")
	// The password comes from the environment only: a flag would show in ps.
	k.sasl.Password = os.Getenv("ORDERFLOW_KAFKA_SASL_PASSWORD")
	k.signing.register(f)
}

func (k *kafkaConfig) validate(f *flags) {
	f.check(k.partitions < 1, "ORDERFLOW_KAFKA_PARTITIONS must be at least 1")
	f.check(k.topic == "", "ORDERFLOW_KAFKA_TOPIC must not be empty")
	f.check(k.session < time.Second, "ORDERFLOW_KAFKA_SESSION_TIMEOUT must be at least 1s")
	factor, minInsync := k.replicas()
	f.check(k.replicationFactor < 0, "ORDERFLOW_KAFKA_REPLICATION_FACTOR must be at least 1")
	f.check(k.minInsync < 0, "ORDERFLOW_KAFKA_MIN_INSYNC_REPLICAS must be at least 1")
	f.check(minInsync > factor, "ORDERFLOW_KAFKA_MIN_INSYNC_REPLICAS=%d exceeds ORDERFLOW_KAFKA_REPLICATION_FACTOR=%d: no produce with acks=all could ever succeed", minInsync, factor)
	if k.brokers == "" {
		f.check(factor > 1, "ORDERFLOW_KAFKA_REPLICATION_FACTOR=%d needs a cluster (KAFKA_BROKERS): the embedded broker is a single broker", factor)
		_, _, err := net.SplitHostPort(k.embeddedAddr)
		f.check(err != nil, "ORDERFLOW_KAFKA_EMBEDDED_ADDR=%q: want host:port", k.embeddedAddr)
		return
	}
	if err := k.client(k.brokerList()).Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			f.check(true, "%s", line)
		}
	}
}

func (k *kafkaConfig) brokerList() []string { return splitList(k.brokers) }

func (k *kafkaConfig) client(brokers []string) kafka.Config {
	return kafka.Config{Brokers: brokers, ClientID: "orderflow", TLS: k.tls, SASL: k.sasl}
}

func (k *kafkaConfig) dlqTopic() string { return kafka.DLQTopic(k.topic) }

// replicas are the replication factor and min.insync.replicas in force:
// the configured ones, or 3 and 2 on a cluster (an acknowledged event
// survives the loss of one broker, and one more can be down for
// maintenance while producing continues) and 1 and 1 on the embedded
// broker, a single broker.
func (k *kafkaConfig) replicas() (factor, minInsync int) {
	factor, minInsync = k.replicationFactor, k.minInsync
	if factor == 0 {
		factor = 3
		if k.brokers == "" {
			factor = 1
		}
	}
	if minInsync == 0 {
		minInsync = min(2, factor)
		if k.brokers == "" {
			minInsync = 1
		}
	}
	return factor, minInsync
}

// topicSpecs are the events topic and its DLQ as configured.
func (k *kafkaConfig) topicSpecs() []kafka.TopicSpec {
	factor, minInsync := k.replicas()
	return []kafka.TopicSpec{
		{Name: k.topic, Partitions: k.partitions, ReplicationFactor: factor, MinInsyncReplicas: minInsync},
		{Name: k.dlqTopic(), Partitions: 1, ReplicationFactor: factor, MinInsyncReplicas: minInsync},
	}
}

// connect returns the cluster to use: KAFKA_BROKERS, or an embedded broker
// started here (closed by the returned func).
func (k *kafkaConfig) connect(log *slog.Logger) (kafka.Config, func(), error) {
	if k.brokers != "" {
		return k.client(k.brokerList()), func() {}, nil
	}
	b, err := kafka.NewBroker(k.embeddedAddr, log)
	if err != nil {
		return kafka.Config{}, nil, fmt.Errorf("embedded kafka on %s: %w (set KAFKA_BROKERS to use a cluster, or ORDERFLOW_KAFKA_EMBEDDED_ADDR to move it)", k.embeddedAddr, err)
	}
	log.Warn("KAFKA_BROKERS is empty: started the embedded Kafka broker; it keeps nothing across restarts "+
		"(the relay republishes the store into it at start)", "addr", strings.Join(b.Addrs(), ","))
	return kafka.Config{Brokers: b.Addrs(), ClientID: "orderflow"}, b.Close, nil
}

// ensureTopics creates missing topics and reports (never changes) ones that
// differ from the configuration: another partition count, fewer replicas
// or a lower min.insync.replicas.
func (k *kafkaConfig) ensureTopics(ctx context.Context, cfg kafka.Config, log *slog.Logger) error {
	err := kafka.EnsureTopics(ctx, cfg, k.topicSpecs()...)
	if errors.Is(err, kafka.ErrTopicMismatch) {
		log.Warn("a Kafka topic differs from the configuration; orderflow does not change existing topics", "err", err)
		return nil
	}
	return err
}

func runKafka(ctx context.Context, args []string) error {
	var (
		k    kafkaConfig
		c    common
		addr string
	)
	f := newFlags("kafka", "Runs the embedded Kafka-protocol broker on its own (franz-go's kfake), so several orderflow processes and tools such as kcat can share it. It keeps nothing across restarts.")
	f.string(&c.logFormat, "log-format", "ORDERFLOW_LOG_FORMAT", "text", "log format: text or json")
	f.string(&c.logLevel, "log-level", "ORDERFLOW_LOG_LEVEL", "info", "log level")
	f.string(&addr, "addr", "ORDERFLOW_KAFKA_EMBEDDED_ADDR", kafka.DefaultBrokerAddr, "listen address")
	f.string(&k.topic, "topic", "ORDERFLOW_KAFKA_TOPIC", kafka.DefaultTopic, "events topic to create")
	f.int(&k.partitions, "partitions", "ORDERFLOW_KAFKA_PARTITIONS", 12, "partitions of the events topic")
	if err := f.parse(args, nil); err != nil {
		return err
	}
	log := c.logger(os.Stderr)
	b, err := kafka.NewBroker(addr, log)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := k.ensureTopics(ctx, kafka.Config{Brokers: b.Addrs()}, log); err != nil {
		return err
	}
	log.Info("embedded Kafka broker serving; it keeps nothing across restarts", "addr", strings.Join(b.Addrs(), ","),
		"topics", []string{k.topic, k.dlqTopic()})
	<-ctx.Done()
	return nil
}
