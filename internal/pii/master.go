package pii

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// MasterKey wraps and unwraps data keys. A cloud KMS implements it with its
// encrypt and decrypt calls; Keyring implements it with configured keys.
// The additional data binds a wrapped key to its data key's id.
type MasterKey interface {
	// Wrap encrypts a data key with the current master key and names it.
	Wrap(ctx context.Context, dataKey, additionalData []byte) (masterKeyID string, wrapped []byte, err error)
	// Unwrap decrypts a data key wrapped by the master key masterKeyID.
	Unwrap(ctx context.Context, masterKeyID string, wrapped, additionalData []byte) ([]byte, error)
}

// ErrUnknownMasterKey means a data key is wrapped by a master key this
// process is not configured with (removed too early in a rotation).
var ErrUnknownMasterKey = errors.New("data key wrapped by a master key that is not configured")

// Keyring is a MasterKey of configured AES-256 keys by id: it wraps with
// the current one and unwraps with any.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewKeyring returns a keyring of 32-byte keys, wrapping with current.
func NewKeyring(keys map[string][]byte, current string) (*Keyring, error) {
	k := &Keyring{current: current, aeads: make(map[string]cipher.AEAD, len(keys))}
	for id, secret := range keys {
		if len(secret) != dataKeyBytes {
			return nil, fmt.Errorf("master key %s: %d bytes, want %d (openssl rand -base64 32)", id, len(secret), dataKeyBytes)
		}
		aead, err := newAEAD(secret)
		if err != nil {
			return nil, fmt.Errorf("master key %s: %w", id, err)
		}
		k.aeads[id] = aead
	}
	if _, ok := k.aeads[current]; !ok {
		return nil, fmt.Errorf("the current master key %q is not among the keys (%v)", current, k.IDs())
	}
	return k, nil
}

// IDs lists the configured master keys' ids, sorted.
func (k *Keyring) IDs() []string { return slices.Sorted(maps.Keys(k.aeads)) }

// Current is the id of the key new data keys are wrapped with.
func (k *Keyring) Current() string { return k.current }

// Wrap implements MasterKey.
func (k *Keyring) Wrap(_ context.Context, dataKey, additionalData []byte) (string, []byte, error) {
	sealed, err := seal(k.aeads[k.current], dataKey, additionalData)
	return k.current, sealed, err
}

// Unwrap implements MasterKey.
func (k *Keyring) Unwrap(_ context.Context, masterKeyID string, wrapped, additionalData []byte) ([]byte, error) {
	aead, ok := k.aeads[masterKeyID]
	if !ok {
		return nil, fmt.Errorf("master key %q: %w", masterKeyID, ErrUnknownMasterKey)
	}
	return open(aead, wrapped, additionalData)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
