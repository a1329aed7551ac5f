package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASL mechanisms understood by Config.
const (
	SASLNone        = ""
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// DefaultDialTimeout bounds establishing one TCP (+TLS +SASL) connection.
const DefaultDialTimeout = 10 * time.Second

// Config is how every client in this package reaches the cluster.
//
// The zero value is not usable: Brokers is required. Everything else is
// optional: no TLS and no SASL means a plaintext, unauthenticated connection,
// which is what the embedded broker speaks.
type Config struct {
	// Brokers are the bootstrap "host:port" addresses.
	Brokers []string
	// ClientID is sent to the brokers in every request; it shows up in
	// broker logs and quotas. Empty means "orderflow".
	ClientID string
	// DialTimeout bounds one connection attempt. Zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// TLS, when Enabled, wraps every connection in TLS.
	TLS TLSConfig
	// SASL, when Mechanism is set, authenticates every connection.
	SASL SASLConfig
}

// TLSConfig holds file-based TLS settings, so they can come from flags or env.
type TLSConfig struct {
	Enabled bool
	// CAFile is a PEM bundle of CAs to trust. Empty means the system pool.
	CAFile string
	// CertFile and KeyFile are the client certificate for mutual TLS;
	// both or neither.
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the broker certificate.
	ServerName string
	// InsecureSkipVerify disables certificate verification. Tests only.
	InsecureSkipVerify bool
}

// SASLConfig selects a SASL mechanism: SASLPlain, SASLScramSHA256 or
// SASLScramSHA512. Password is never printed by String or LogValue.
type SASLConfig struct {
	Mechanism string
	Username  string
	Password  string
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka config: no brokers"))
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("kafka config: broker %q is not host:port", b))
		}
	}
	if c.DialTimeout < 0 {
		errs = append(errs, errors.New("kafka config: negative dial timeout"))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("kafka config: TLS cert and key files go together"))
	}
	if !c.TLS.Enabled && (c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.InsecureSkipVerify) {
		errs = append(errs, errors.New("kafka config: TLS options set but TLS not enabled"))
	}
	switch strings.ToLower(c.SASL.Mechanism) {
	case SASLNone:
		if c.SASL.Username != "" || c.SASL.Password != "" {
			errs = append(errs, errors.New("kafka config: SASL credentials without a mechanism"))
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if c.SASL.Username == "" || c.SASL.Password == "" {
			errs = append(errs, errors.New("kafka config: SASL needs username and password"))
		}
	default:
		errs = append(errs, fmt.Errorf("kafka config: unknown SASL mechanism %q (want plain, scram-sha-256 or scram-sha-512)", c.SASL.Mechanism))
	}
	return errors.Join(errs...)
}

// String describes c without secrets, so it is safe to log.
func (c Config) String() string {
	pw := ""
	if c.SASL.Password != "" {
		pw = " password=REDACTED"
	}
	return fmt.Sprintf("kafka{brokers=%s client_id=%s tls=%t sasl=%s user=%s%s}",
		strings.Join(c.Brokers, ","), c.clientID(), c.TLS.Enabled, c.SASL.Mechanism, c.SASL.Username, pw)
}

// LogValue makes slog print the redacted form too.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String redacts the password.
func (s SASLConfig) String() string {
	return fmt.Sprintf("sasl{mechanism=%s user=%s password=REDACTED}", s.Mechanism, s.Username)
}

// LogValue redacts the password.
func (s SASLConfig) LogValue() slog.Value { return slog.StringValue(s.String()) }

func (c Config) clientID() string {
	if c.ClientID == "" {
		return "orderflow"
	}
	return c.ClientID
}

func (c Config) dialTimeout() time.Duration {
	if c.DialTimeout == 0 {
		return DefaultDialTimeout
	}
	return c.DialTimeout
}

// Transport builds the kafka-go Transport used by Writer and Client.
func (c Config) Transport() (*kafkago.Transport, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tc, mech, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafkago.Transport{
		ClientID:    c.clientID(),
		DialTimeout: c.dialTimeout(),
		TLS:         tc,
		SASL:        mech,
	}, nil
}

// Dialer builds the kafka-go Dialer used by Reader and ConsumerGroup.
func (c Config) Dialer() (*kafkago.Dialer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tc, mech, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafkago.Dialer{
		ClientID:      c.clientID(),
		Timeout:       c.dialTimeout(),
		DualStack:     true,
		TLS:           tc,
		SASLMechanism: mech,
	}, nil
}

func (c Config) security() (*tls.Config, sasl.Mechanism, error) {
	tc, err := c.TLS.build()
	if err != nil {
		return nil, nil, err
	}
	mech, err := c.SASL.build()
	if err != nil {
		return nil, nil, err
	}
	return tc, mech, nil
}

func (t TLSConfig) build() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, // #nosec G402 -- opt-in, documented as tests only; no flag or variable of cmd sets it
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls: no certificates in %s", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (s SASLConfig) build() (sasl.Mechanism, error) {
	switch strings.ToLower(s.Mechanism) {
	case SASLNone:
		return nil, nil
	case SASLPlain:
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case SASLScramSHA256:
		return scram.Mechanism(scram.SHA256, s.Username, s.Password)
	case SASLScramSHA512:
		return scram.Mechanism(scram.SHA512, s.Username, s.Password)
	}
	return nil, fmt.Errorf("kafka sasl: unknown mechanism %q", s.Mechanism)
}
