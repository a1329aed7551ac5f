package kafka_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/streams/kafka"
)

func TestConfigValidate(t *testing.T) {
	base := kafka.Config{Brokers: []string{"k1:9092"}}
	for _, tc := range []struct {
		name string
		edit func(*kafka.Config)
		ok   bool
	}{
		{"plaintext with brokers is valid", func(*kafka.Config) {}, true},
		{"no brokers is invalid", func(c *kafka.Config) { c.Brokers = nil }, false},
		{"a broker without a port is invalid", func(c *kafka.Config) { c.Brokers = []string{"k1"} }, false},
		{"scram-sha-512 with credentials is valid", func(c *kafka.Config) {
			c.SASL = kafka.SASLConfig{Mechanism: kafka.SASLScramSHA512, Username: "u", Password: "p"}
		}, true},
		{"plain without password is invalid", func(c *kafka.Config) {
			c.SASL = kafka.SASLConfig{Mechanism: kafka.SASLPlain, Username: "u"}
		}, false},
		{"an unknown mechanism is invalid", func(c *kafka.Config) {
			c.SASL = kafka.SASLConfig{Mechanism: "gssapi", Username: "u", Password: "p"}
		}, false},
		{"a cert without a key is invalid", func(c *kafka.Config) {
			c.TLS = kafka.TLSConfig{Enabled: true, CertFile: "c.pem"}
		}, false},
		{"TLS options without TLS enabled are invalid", func(c *kafka.Config) {
			c.TLS = kafka.TLSConfig{InsecureSkipVerify: true}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%t", err, tc.ok)
			}
		})
	}
}

func TestConfigBuildsClientsForEverySASLMechanism(t *testing.T) {
	for _, mech := range []string{kafka.SASLPlain, kafka.SASLScramSHA256, kafka.SASLScramSHA512} {
		c := kafka.Config{Brokers: []string{"k:9093"}, SASL: kafka.SASLConfig{Mechanism: mech, Username: "u", Password: "p"},
			TLS: kafka.TLSConfig{Enabled: true, InsecureSkipVerify: true}}
		tr, err := c.Transport()
		if err != nil || tr.SASL == nil || tr.TLS == nil {
			t.Fatalf("%s transport: %v", mech, err)
		}
		d, err := c.Dialer()
		if err != nil || d.SASLMechanism == nil || d.TLS == nil {
			t.Fatalf("%s dialer: %v", mech, err)
		}
	}
}

func TestConfigNeverPrintsThePassword(t *testing.T) {
	c := kafka.Config{Brokers: []string{"k:9093"}, SASL: kafka.SASLConfig{Mechanism: kafka.SASLPlain, Username: "svc", Password: "hunter2"}}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "kafka", c, "sasl", c.SASL)
	for _, s := range []string{c.String(), c.SASL.String(), buf.String()} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("password leaked: %s", s)
		}
		if !strings.Contains(s, "svc") {
			t.Fatalf("username missing: %s", s)
		}
	}
}
