package testenv

import (
	"strings"
	"sync"
	"testing"

	"github.com/orderflow/orderflow/streams/envelope"
)

// SigningKeysVar is the variable the served binary reads its Kafka signing
// keys from.
const SigningKeysVar = "ORDERFLOW_KAFKA_SIGNING_KEYS"

// EventKey is the test's key for the events topic: every relay,
// projector and hub the test starts, in process (RelayConfig, EventSigner,
// EventVerifier) or served (Serve, ServeDB), signs and verifies with it, like
// the processes of one deployment. One per top-level test, generated on
// first use, so subtests share their parent's.
func EventKey(t testing.TB) envelope.Key {
	t.Helper()
	name, _, _ := strings.Cut(t.Name(), "/")
	signingKeys.Lock()
	defer signingKeys.Unlock()
	k, ok := signingKeys.byTest[name]
	if !ok {
		var err error
		if k, err = envelope.GenerateKey("test"); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		signingKeys.byTest[name] = k
	}
	return k
}

var signingKeys = struct {
	sync.Mutex
	byTest map[string]envelope.Key
}{byTest: map[string]envelope.Key{}}

// EventSigner signs with the test's key.
func EventSigner(t testing.TB) *envelope.Signer {
	t.Helper()
	s, err := envelope.NewSigner(EventKey(t))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return s
}

// EventVerifier accepts the test's key only.
func EventVerifier(t testing.TB) *envelope.Verifier {
	t.Helper()
	v, err := envelope.NewVerifier(EventKey(t))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return v
}
