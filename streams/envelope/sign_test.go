package envelope_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/oklog/ulid/v2"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/streams/envelope"
)

func testKey(t testing.TB, id string, fill byte) envelope.Key {
	t.Helper()
	k := envelope.Key{ID: id, Secret: bytes.Repeat([]byte{fill}, envelope.MinSecretBytes)}
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	return k
}

func signer(t testing.TB, k envelope.Key) *envelope.Signer {
	t.Helper()
	s, err := envelope.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verifier(t testing.TB, keys ...envelope.Key) *envelope.Verifier {
	t.Helper()
	v, err := envelope.NewVerifier(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func event(t testing.TB) eventstore.RecordedEvent {
	t.Helper()
	return eventstore.RecordedEvent{
		ID: ulid.MustParseStrict("01JD4T0S6W7Q3C2N7ZJ0B5A9XK"), StreamID: ulid.MustParseStrict("01JD4T0S6V1N2M3P4Q5R6S7T8V"),
		StreamType: "order", Version: 3, Type: "OrderPlaced", SchemaVersion: 1,
		Data:       []byte(`{"total_minor":2500,"item_count":1,"placed_at":"2026-11-21T12:00:00Z"}`),
		Metadata:   eventstore.Metadata{CorrelationID: "corr-1"},
		RecordedAt: time.Date(2026, 11, 21, 12, 0, 0, 123456000, time.UTC), Position: 42,
	}
}

func signedMessage(t testing.TB, s *envelope.Signer) kafkago.Message {
	t.Helper()
	m, err := envelope.Message(event(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sign(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func header(m kafkago.Message, name string) string {
	for _, h := range m.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}

func setHeader(m *kafkago.Message, name, value string) {
	hs := make([]kafkago.Header, 0, len(m.Headers))
	for _, h := range m.Headers {
		if h.Key == name {
			h.Value = []byte(value)
		}
		hs = append(hs, h)
	}
	m.Headers = hs
}

// The signature, computed here from the written definition (doc.go, and
// the README's Kafka contract) rather than from the package's code: a
// change of the input breaks this test, and every verifier outside
// orderflow with it.
func TestTheSignatureIsTheDocumentedHMACOfKeyHeadersAndValue(t *testing.T) {
	k := envelope.Key{ID: "k1", Secret: make([]byte, 32)}
	for i := range k.Secret {
		k.Secret[i] = byte(i)
	}
	m := signedMessage(t, signer(t, k))

	in := []byte("orderflow-signature-v1")
	for _, f := range []string{string(m.Key), "OrderPlaced", "01JD4T0S6W7Q3C2N7ZJ0B5A9XK", "order", "3", "42", string(m.Value)} {
		in = binary.BigEndian.AppendUint32(in, uint32(len(f)))
		in = append(in, f...)
	}
	mac := hmac.New(sha256.New, k.Secret)
	mac.Write(in)
	want := "v1:k1:" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	if got := header(m, envelope.HeaderSignature); got != want {
		t.Fatalf("signature header %q, want %q", got, want)
	}
	if string(m.Key) != "01JD4T0S6V1N2M3P4Q5R6S7T8V" {
		t.Errorf("key %q, want the stream id", m.Key)
	}
}

// The README gives a test vector for verifiers written elsewhere: this
// key (bytes 0x00…0x1f), the relay's message of this event, its signature.
func TestTheREADMEsTestVectorIsTheRelaysMessageAndItsSignature(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	between := func(start, end string) string {
		_, rest, ok := strings.Cut(readme, start)
		v, _, ok2 := strings.Cut(rest, end)
		if !ok || !ok2 {
			t.Fatalf("README.md has no %q … %q", start, end)
		}
		return v
	}
	value := between("<!-- signature-vector: value -->\n```json\n", "\n```")
	signature := between("<!-- signature-vector: signature -->`", "`")
	k := envelope.Key{ID: "k1", Secret: make([]byte, 32)}
	for i := range k.Secret {
		k.Secret[i] = byte(i)
	}
	m := signedMessage(t, signer(t, k))
	if string(m.Value) != value {
		t.Errorf("the README's value is not the relay's message:\n%s\n%s", value, m.Value)
	}
	if got := header(m, envelope.HeaderSignature); got != signature {
		t.Errorf("the README says %q, the relay signs %q", signature, got)
	}
	if !strings.Contains(readme, base64.StdEncoding.EncodeToString(k.Secret)) {
		t.Error("the README does not give the vector's key")
	}
}

func TestAVerifierRefusesEveryChangeToWhatIsSigned(t *testing.T) {
	k1 := testKey(t, "k1", 1)
	v := verifier(t, k1)
	good := signedMessage(t, signer(t, k1))
	if err := v.Verify(good); err != nil {
		t.Fatalf("the relay's own message refused: %v", err)
	}
	cases := []struct {
		name   string
		change func(m *kafkago.Message)
		want   envelope.Reason
	}{
		{"another key (order id)", func(m *kafkago.Message) { m.Key = []byte("01JD4T0S6V1N2M3P4Q5R6S7T8W") }, envelope.ReasonBadSignature},
		{"another type", func(m *kafkago.Message) { setHeader(m, envelope.HeaderType, "OrderCancelled") }, envelope.ReasonBadSignature},
		{"another event id", func(m *kafkago.Message) { setHeader(m, envelope.HeaderEventID, "01JD4T0S6W7Q3C2N7ZJ0B5A9XM") }, envelope.ReasonBadSignature},
		{"another stream type", func(m *kafkago.Message) { setHeader(m, envelope.HeaderStreamType, "customer") }, envelope.ReasonBadSignature},
		{"the next version", func(m *kafkago.Message) { setHeader(m, envelope.HeaderVersion, "4") }, envelope.ReasonBadSignature},
		{"a position of 2^62", func(m *kafkago.Message) { setHeader(m, envelope.HeaderPosition, "4611686018427387904") }, envelope.ReasonBadSignature},
		{"one byte of the value", func(m *kafkago.Message) {
			m.Value = bytes.Replace(m.Value, []byte(`"version":3`), []byte(`"version":4`), 1)
		}, envelope.ReasonBadSignature},
		{"a signed header dropped", func(m *kafkago.Message) {
			m.Headers = m.Headers[1:]
		}, envelope.ReasonBadSignature},
		{"a signed header twice", func(m *kafkago.Message) {
			m.Headers = append(m.Headers, kafkago.Header{Key: envelope.HeaderVersion, Value: []byte("4")})
		}, envelope.ReasonMalformed},
		{"two signatures", func(m *kafkago.Message) {
			m.Headers = append(m.Headers, kafkago.Header{Key: envelope.HeaderSignature, Value: []byte(header(*m, envelope.HeaderSignature))})
		}, envelope.ReasonMalformed},
		{"no signature", func(m *kafkago.Message) {
			m.Headers = m.Headers[:len(m.Headers)-1]
		}, envelope.ReasonUnsigned},
		{"a signature of another scheme", func(m *kafkago.Message) {
			setHeader(m, envelope.HeaderSignature, "v2"+strings.TrimPrefix(header(*m, envelope.HeaderSignature), "v1"))
		}, envelope.ReasonMalformed},
		{"a signature that is no MAC", func(m *kafkago.Message) { setHeader(m, envelope.HeaderSignature, "v1:k1:short") }, envelope.ReasonMalformed},
		{"a signature too long to be a MAC", func(m *kafkago.Message) {
			setHeader(m, envelope.HeaderSignature, header(*m, envelope.HeaderSignature)+strings.Repeat("A", 100))
		}, envelope.ReasonMalformed},
		{"a signature with no key id", func(m *kafkago.Message) { setHeader(m, envelope.HeaderSignature, "garbage") }, envelope.ReasonMalformed},
		{"a key id the verifier does not know", func(m *kafkago.Message) {
			setHeader(m, envelope.HeaderSignature, strings.Replace(header(*m, envelope.HeaderSignature), ":k1:", ":k9:", 1))
		}, envelope.ReasonUnknownKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := good
			m.Headers = append([]kafkago.Header(nil), good.Headers...)
			m.Value = bytes.Clone(good.Value)
			c.change(&m)
			err := v.Verify(m)
			if r, _ := envelope.ReasonOf(err); r != c.want {
				t.Fatalf("Verify: %v, want reason %s", err, c.want)
			}
			if !envelope.TrustAll().TrustsAll() || envelope.TrustAll().Verify(m) != nil {
				t.Error("TrustAll refused it")
			}
		})
	}
	for _, name := range []string{envelope.HeaderCorrelationID, envelope.HeaderTraceParent, envelope.HeaderTraceState} {
		t.Run("the "+name+" header, a copy of the signed metadata", func(t *testing.T) {
			m := good
			m.Headers = append([]kafkago.Header(nil), good.Headers...)
			setHeader(&m, name, "other")
			if err := v.Verify(m); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
	t.Run("a message forged with a key of its own", func(t *testing.T) {
		forged := signedMessage(t, signer(t, testKey(t, "k1", 2)))
		if r, _ := envelope.ReasonOf(v.Verify(forged)); r != envelope.ReasonBadSignature {
			t.Fatalf("reason %q, want %s", r, envelope.ReasonBadSignature)
		}
	})
}

func TestTheTraceContextTravelsInTheSignedValueAndIsCopiedIntoHeaders(t *testing.T) {
	t.Parallel()
	e := event(t)
	e.Metadata.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	e.Metadata.TraceState = "vendor=abc"
	m, err := envelope.Message(e)
	if err != nil {
		t.Fatal(err)
	}
	if header(m, envelope.HeaderTraceParent) != e.Metadata.TraceParent || header(m, envelope.HeaderTraceState) != e.Metadata.TraceState {
		t.Fatalf("headers %v, want the event's trace context", m.Headers)
	}
	signed, err := eventstore.UnmarshalEnvelope(m.Value)
	if err != nil || signed.Metadata != e.Metadata {
		t.Fatalf("the value's metadata %+v (%v), want %+v", signed.Metadata, err, e.Metadata)
	}
	if bare, _ := envelope.Message(event(t)); header(bare, envelope.HeaderTraceParent) != "" || len(bare.Headers) != len(m.Headers)-2 {
		t.Fatalf("an event without a trace context has headers %v", bare.Headers)
	}
}

// The hub reads the message as streams/kafka hands it to watermill: the
// headers in metadata, the key in kafka.DefaultKeyMetadata.
func TestVerifyMessageChecksWhatWatermillDelivers(t *testing.T) {
	k1 := testKey(t, "k1", 1)
	v := verifier(t, k1)
	m := signedMessage(t, signer(t, k1))
	msg := message.NewMessage("uuid", m.Value)
	for _, h := range m.Headers {
		msg.Metadata.Set(h.Key, string(h.Value))
	}
	msg.Metadata.Set("partition_key", string(m.Key))
	if err := v.VerifyMessage(msg, "partition_key"); err != nil {
		t.Fatalf("refused: %v", err)
	}
	msg.Metadata.Set(envelope.HeaderPosition, "4611686018427387904")
	if r, _ := envelope.ReasonOf(v.VerifyMessage(msg, "partition_key")); r != envelope.ReasonBadSignature {
		t.Fatalf("a changed position: reason %q", r)
	}
	delete(msg.Metadata, envelope.HeaderSignature)
	if r, _ := envelope.ReasonOf(v.VerifyMessage(msg, "partition_key")); r != envelope.ReasonUnsigned {
		t.Fatalf("no signature: reason %q", r)
	}
}

// Rotation: verifiers take the new key first, the relay signs with it
// next, the old key goes last; nothing real is refused at any step, and
// once the old key is gone what it signs is.
func TestKeyRotationRefusesNothingRealAtAnyStep(t *testing.T) {
	k1, k2 := testKey(t, "k1", 1), testKey(t, "k2", 2)
	steps := []struct {
		name     string
		signWith envelope.Key
		accept   []envelope.Key
	}{
		{"before: k1 everywhere", k1, []envelope.Key{k1}},
		{"verifiers take k2", k1, []envelope.Key{k1, k2}},
		{"relays sign with k2", k2, []envelope.Key{k1, k2}},
		{"k1 removed", k2, []envelope.Key{k2}},
	}
	signedWithK1 := signedMessage(t, signer(t, k1))
	var inFlight kafkago.Message // signed at the step before, still in the topic
	for i, s := range steps {
		v := verifier(t, s.accept...)
		m := signedMessage(t, signer(t, s.signWith))
		if err := v.Verify(m); err != nil {
			t.Errorf("%s: a message signed now refused: %v", s.name, err)
		}
		if i > 0 {
			if err := v.Verify(inFlight); err != nil {
				t.Errorf("%s: a message signed at the step before refused: %v", s.name, err)
			}
		}
		inFlight = m
	}
	if r, _ := envelope.ReasonOf(verifier(t, k2).Verify(signedWithK1)); r != envelope.ReasonUnknownKey {
		t.Errorf("a message signed with the removed key: reason %q, want %s", r, envelope.ReasonUnknownKey)
	}
	if got := verifier(t, k2, k1).KeyIDs(); strings.Join(got, ",") != "k1,k2" {
		t.Errorf("KeyIDs %v", got)
	}
}

func TestSignReplacesASignatureAndRefusesADuplicatedHeader(t *testing.T) {
	k1, k2 := testKey(t, "k1", 1), testKey(t, "k2", 2)
	m := signedMessage(t, signer(t, k1))
	if err := signer(t, k2).Sign(&m); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, h := range m.Headers {
		if h.Key == envelope.HeaderSignature {
			n++
		}
	}
	if n != 1 || !strings.HasPrefix(header(m, envelope.HeaderSignature), "v1:k2:") {
		t.Fatalf("%d signature headers, %q", n, header(m, envelope.HeaderSignature))
	}
	m.Headers = append(m.Headers, kafkago.Header{Key: envelope.HeaderType, Value: []byte("x")})
	if err := signer(t, k1).Sign(&m); err == nil {
		t.Fatal("signed a message with its type twice")
	}
}

func TestNewVerifierAndNewSignerRefuseBadKeys(t *testing.T) {
	if _, err := envelope.NewVerifier(); err == nil {
		t.Error("a verifier of no key")
	}
	k := testKey(t, "k1", 1)
	if _, err := envelope.NewVerifier(k, k); err == nil {
		t.Error("a verifier with one id twice")
	}
	for _, bad := range []envelope.Key{{ID: "k1", Secret: make([]byte, 31)}, {ID: "has:colon", Secret: make([]byte, 32)}, {Secret: make([]byte, 32)}} {
		if _, err := envelope.NewSigner(bad); err == nil {
			t.Errorf("signer of %v", bad)
		}
		if _, err := envelope.NewVerifier(bad); err == nil {
			t.Errorf("verifier of %v", bad)
		}
	}
}
