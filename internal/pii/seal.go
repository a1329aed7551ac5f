package pii

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/oklog/ulid/v2"
)

// sealedPrefix starts every sealed value: "pii:v1:<key id>:<base64url>".
const sealedPrefix = "pii:v1:"

const dataKeyBytes = 32 // AES-256

// errCorrupt is a sealed value that does not open with its key: tampered
// with, or copied from another order or field.
var errCorrupt = errors.New("sealed value does not open")

// IsSealed reports whether v is a sealed value.
func IsSealed(v string) bool { return strings.HasPrefix(v, sealedPrefix) }

// keyIDOf returns the data key id a sealed value names.
func keyIDOf(v string) (ulid.ULID, bool) {
	rest, ok := strings.CutPrefix(v, sealedPrefix)
	if !ok {
		return ulid.ULID{}, false
	}
	id, _, ok := strings.Cut(rest, ":")
	if !ok {
		return ulid.ULID{}, false
	}
	k, err := ulid.ParseStrict(id)
	return k, err == nil
}

// valueAD is the additional data of a sealed value: the key, the stream and
// the field it belongs to, so that it opens nowhere else.
func valueAD(key, stream ulid.ULID, field string) []byte {
	return []byte("orderflow-pii-v1\x00" + key.String() + "\x00" + stream.String() + "\x00" + field)
}

// DataKey is one customer's key, unwrapped.
type DataKey struct {
	ID   ulid.ULID
	aead cipher.AEAD
}

// Seal returns plaintext sealed for field of stream; "" stays "" (no data).
func (k DataKey) Seal(stream ulid.ULID, field, plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	b, err := seal(k.aead, []byte(plaintext), valueAD(k.ID, stream, field))
	if err != nil {
		return "", err
	}
	return sealedPrefix + k.ID.String() + ":" + base64.RawURLEncoding.EncodeToString(b), nil
}

// open returns the plaintext of a sealed value of field of stream.
func (k DataKey) open(stream ulid.ULID, field, sealed string) (string, error) {
	_, enc, _ := strings.Cut(strings.TrimPrefix(sealed, sealedPrefix), ":")
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", errCorrupt
	}
	pt, err := open(k.aead, b, valueAD(k.ID, stream, field))
	if err != nil {
		return "", err
	}
	return string(pt), nil
}

// seal is AES-GCM with a random nonce, written before the ciphertext.
func seal(aead cipher.AEAD, plaintext, ad []byte) ([]byte, error) {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, ad), nil
}

func open(aead cipher.AEAD, b, ad []byte) ([]byte, error) {
	if len(b) < aead.NonceSize()+aead.Overhead() {
		return nil, errCorrupt
	}
	pt, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], ad)
	if err != nil {
		return nil, errCorrupt
	}
	return pt, nil
}
