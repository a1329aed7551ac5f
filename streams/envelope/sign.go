package envelope

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"
)

// signatureScheme is the first part of the signature header: HMAC-SHA256
// over the input of writeInput.
const signatureScheme = "v1"

// macKey is a key with a pool of its HMAC states: a relay signs, and every
// projection verifies, each event, and hmac.New costs two SHA-256 states.
type macKey struct {
	id   string
	pool sync.Pool
}

func newMACKey(k Key) (*macKey, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	secret := bytes.Clone(k.Secret)
	return &macKey{id: k.ID, pool: sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}}, nil
}

func (k *macKey) sum(f *signed) [sha256.Size]byte {
	h := k.pool.Get().(hash.Hash)
	h.Reset()
	writeInput(h, f)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	k.pool.Put(h)
	return out
}

// Signer signs messages with one key. Safe for concurrent use.
type Signer struct{ key *macKey }

// NewSigner signs with k.
func NewSigner(k Key) (*Signer, error) {
	mk, err := newMACKey(k)
	if err != nil {
		return nil, err
	}
	return &Signer{key: mk}, nil
}

// KeyID is the id of the key it signs with.
func (s *Signer) KeyID() string { return s.key.id }

// Sign sets m's signature header (replacing any). A message that carries a
// signed header twice is refused: no verifier would believe it.
func (s *Signer) Sign(m *kafkago.Message) error {
	f := fromKafka(*m)
	if f.duplicate != "" && f.duplicate != HeaderSignature {
		return fmt.Errorf("sign: header %q appears twice", f.duplicate)
	}
	mac := s.key.sum(&f)
	v := make([]byte, 0, len(signatureScheme)+len(s.key.id)+2+base64.RawURLEncoding.EncodedLen(len(mac)))
	v = append(v, signatureScheme...)
	v = append(v, ':')
	v = append(v, s.key.id...)
	v = append(v, ':')
	v = base64.RawURLEncoding.AppendEncode(v, mac[:])
	m.Headers = slices.DeleteFunc(m.Headers, func(h kafkago.Header) bool { return h.Key == HeaderSignature })
	m.Headers = append(m.Headers, kafkago.Header{Key: HeaderSignature, Value: v})
	return nil
}

// Reason says why a message was refused; it is the reason label of
// kafka_rejected_messages_total, so its values are few and fixed.
type Reason string

// Why a Verifier refuses a message.
const (
	ReasonUnsigned     Reason = "unsigned"      // no signature header
	ReasonMalformed    Reason = "malformed"     // a signature header that does not parse, or a signed header twice
	ReasonUnknownKey   Reason = "unknown_key"   // a key id not in the verifier's set: never configured, or removed
	ReasonBadSignature Reason = "bad_signature" // the MAC does not match the message
)

var verifierReasons = []Reason{ReasonUnsigned, ReasonMalformed, ReasonUnknownKey, ReasonBadSignature}

// RefusedError is a message a consumer refused, and why.
type RefusedError struct {
	Reason Reason
	Detail string
}

func (e *RefusedError) Error() string {
	return "message refused: " + string(e.Reason) + ": " + e.Detail
}

func refused(r Reason, format string, args ...any) error {
	return &RefusedError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf is err's Reason if it is (or wraps) a RefusedError.
func ReasonOf(err error) (Reason, bool) {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Reason, true
	}
	return "", false
}

// Verifier checks messages against a set of keys. Safe for concurrent use.
type Verifier struct {
	keys     map[string]*macKey
	trustAll bool
}

// NewVerifier believes messages signed with any of keys (at least one;
// distinct ids).
func NewVerifier(keys ...Key) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("verifier: no key")
	}
	v := &Verifier{keys: make(map[string]*macKey, len(keys))}
	for _, k := range keys {
		if _, dup := v.keys[k.ID]; dup {
			return nil, fmt.Errorf("verifier: key id %q appears twice", k.ID)
		}
		mk, err := newMACKey(k)
		if err != nil {
			return nil, err
		}
		v.keys[k.ID] = mk
	}
	return v, nil
}

// TrustAll is a Verifier that believes every message, signed or not: for a
// topic every producer of which is trusted (cmd's
// ORDERFLOW_KAFKA_TRUSTED_TOPIC), and during the first rollout of signing
// (README, "Signed events").
func TrustAll() *Verifier { return &Verifier{trustAll: true} }

// TrustsAll reports whether v is TrustAll.
func (v *Verifier) TrustsAll() bool { return v.trustAll }

// KeyIDs are the ids of the keys v accepts, sorted.
func (v *Verifier) KeyIDs() []string {
	ids := make([]string, 0, len(v.keys))
	for id := range v.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Verify returns nil when m is signed by one of v's keys, else a
// *RefusedError.
func (v *Verifier) Verify(m kafkago.Message) error {
	if v.trustAll {
		return nil
	}
	f := fromKafka(m)
	return v.verify(&f)
}

// VerifyMessage is Verify for a Kafka message as streams/kafka hands it to
// watermill, with the Kafka key in metadata keyMetadata.
func (v *Verifier) VerifyMessage(msg *message.Message, keyMetadata string) error {
	if v.trustAll {
		return nil
	}
	f := fromWatermill(msg, keyMetadata)
	return v.verify(&f)
}

func (v *Verifier) verify(f *signed) error {
	if f.duplicate != "" {
		return refused(ReasonMalformed, "header %q appears twice", f.duplicate)
	}
	if !f.hasSig {
		return refused(ReasonUnsigned, "no %s header", HeaderSignature)
	}
	scheme, rest, ok1 := bytes.Cut(f.signature, []byte{':'})
	id, mac64, ok2 := bytes.Cut(rest, []byte{':'})
	if !ok1 || !ok2 || string(scheme) != signatureScheme {
		return refused(ReasonMalformed, "the %s header is not %s:<key id>:<mac>", HeaderSignature, signatureScheme)
	}
	k, ok := v.keys[string(id)]
	if !ok {
		return refused(ReasonUnknownKey, "signed with key %q, which is not among the accepted keys", truncate(string(id)))
	}
	var mac [sha256.Size]byte
	if len(mac64) != base64.RawURLEncoding.EncodedLen(len(mac)) {
		return refused(ReasonMalformed, "the MAC of the %s header is not %d bytes of base64url", HeaderSignature, len(mac))
	}
	if n, err := base64.RawURLEncoding.Strict().Decode(mac[:], mac64); err != nil || n != len(mac) {
		return refused(ReasonMalformed, "the MAC of the %s header is not %d bytes of base64url", HeaderSignature, len(mac))
	}
	want := k.sum(f)
	if !hmac.Equal(mac[:], want[:]) {
		return refused(ReasonBadSignature, "the MAC does not match the message under key %q", k.id)
	}
	return nil
}
