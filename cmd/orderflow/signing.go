package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/orderflow/orderflow/streams/envelope"
)

// The variable of the signing keys: environment only, never a flag (the
// value is the secrets, and flags show in ps).
const signingKeysVar = "ORDERFLOW_KAFKA_SIGNING_KEYS"

// signingConfig is how the events topic is signed and verified (README,
// "Signed events"): the relay signs with one key, projectors and hubs
// accept every key of the set.
type signingConfig struct {
	keysEnv  string
	keysFile string
	keyID    string
	trusted  bool
	keys     []envelope.Key // read by validate
}

func (s *signingConfig) register(f *flags) {
	f.string(&s.keysFile, "kafka-signing-keys-file", "ORDERFLOW_KAFKA_SIGNING_KEYS_FILE", "",
		"file of the keys of the events topic, one <id>=<base64 secret> per line (# comments), read at start; instead of $"+signingKeysVar)
	f.string(&s.keyID, "kafka-signing-key-id", "ORDERFLOW_KAFKA_SIGNING_KEY_ID", "",
		"id of the key the relay signs with (default: the only key); projectors and hubs accept every key")
	f.bool(&s.trusted, "kafka-trusted-topic", "ORDERFLOW_KAFKA_TRUSTED_TOPIC", false,
		"believe every message on the events topic, signed or not: only if every producer to it is trusted (logged as a warning at start)")
	s.keysEnv = os.Getenv(signingKeysVar)
}

// validate reads the keys and checks them against the roles: relay signs,
// consumes (projector, hub) verifies; embedded is the embedded broker.
func (s *signingConfig) validate(f *flags, embedded, relay, consumes bool) {
	text, from := s.keysEnv, signingKeysVar
	switch {
	case s.keysEnv != "" && s.keysFile != "":
		f.check(true, "set %s or ORDERFLOW_KAFKA_SIGNING_KEYS_FILE, not both", signingKeysVar)
		return
	case s.keysFile != "":
		b, err := os.ReadFile(s.keysFile) // #nosec G304 -- the operator names the key file
		if err != nil {
			f.check(true, "ORDERFLOW_KAFKA_SIGNING_KEYS_FILE: %v", err)
			return
		}
		text, from = string(b), "ORDERFLOW_KAFKA_SIGNING_KEYS_FILE "+s.keysFile
	}
	keys, err := envelope.ParseKeys(text)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			f.check(true, "%s: %s", from, line)
		}
		return
	}
	s.keys = keys
	if s.keyID != "" && !s.hasKey(s.keyID) {
		f.check(true, "ORDERFLOW_KAFKA_SIGNING_KEY_ID=%q is not among the signing keys", s.keyID)
	}
	if !relay && !consumes {
		return
	}
	f.check(relay && len(keys) > 1 && s.keyID == "",
		"%d signing keys: ORDERFLOW_KAFKA_SIGNING_KEY_ID must say which one the relay signs with", len(keys))
	f.check(len(keys) == 0 && !s.trusted && !embedded,
		"%s (or ORDERFLOW_KAFKA_SIGNING_KEYS_FILE) is required with KAFKA_BROKERS: the relay signs every event with it, and projectors and hubs refuse what it did not sign; "+
			"only if every producer to the topic is trusted, set ORDERFLOW_KAFKA_TRUSTED_TOPIC=true instead", signingKeysVar)
}

func (s *signingConfig) hasKey(id string) bool {
	for _, k := range s.keys {
		if k.ID == id {
			return true
		}
	}
	return false
}

// setup returns the relay's signer (nil: it publishes unsigned, on a
// trusted topic without keys) and the consumers' verifier, and logs what it
// chose (key ids only). With the embedded broker and no key it generates
// one for this process: the broker, and every message signed with the
// key, end with the process.
func (s *signingConfig) setup(log *slog.Logger) (*envelope.Signer, *envelope.Verifier, error) {
	keys, signWith := s.keys, s.keyID
	if len(keys) == 0 && !s.trusted {
		k, err := envelope.GenerateKey("ephemeral")
		if err != nil {
			return nil, nil, err
		}
		keys = []envelope.Key{k}
		log.Warn("Kafka signing: no key configured; this process signs and verifies the embedded broker's messages with a key of its own, " +
			"which ends with it like the broker (with KAFKA_BROKERS a key is required: README, Signed events)")
	}
	if signWith == "" && len(keys) == 1 {
		signWith = keys[0].ID
	}
	var signer *envelope.Signer
	for _, k := range keys {
		if k.ID != signWith {
			continue
		}
		var err error
		if signer, err = envelope.NewSigner(k); err != nil {
			return nil, nil, err
		}
	}
	if s.trusted {
		signing := "none: messages are published unsigned"
		if signer != nil {
			signing = signer.KeyID()
		}
		log.Warn("TRUSTED KAFKA TOPIC (ORDERFLOW_KAFKA_TRUSTED_TOPIC=true): projectors and hubs believe every message on the events topic, signed or not; "+
			"anyone who can produce to it can write an order's history into the read models and onto dashboards (README, Signed events)",
			"signing_key", signing)
		return signer, envelope.TrustAll(), nil
	}
	v, err := envelope.NewVerifier(keys...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka signing: %w", err)
	}
	signing := "(several keys, none named by ORDERFLOW_KAFKA_SIGNING_KEY_ID)"
	if signer != nil {
		signing = signer.KeyID()
	}
	log.Info("Kafka messages are signed and verified", "signing_key", signing, "accepted_keys", strings.Join(v.KeyIDs(), ","))
	return signer, v, nil
}
