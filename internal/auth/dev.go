package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The development tokens' issuer and audience. A production start refuses
// this issuer, and keys whose id has DevKeyIDPrefix.
const (
	DevIssuer      = "orderflow-dev"
	DevAudience    = "orderflow"
	DevKeyIDPrefix = "orderflow-dev-"
	// DefaultDevDir is where `make run` keeps the development key, under
	// the git-ignored .run/.
	DefaultDevDir = ".run/dev-jwt"
	devKeyFile    = "ed25519.pem"
)

// DevKey is the development signing key: the Ed25519 key in dir, generated
// there (0600, in a 0700 directory) on first use.
type DevKey struct {
	Private ed25519.PrivateKey
	ID      string // DevKeyIDPrefix + a digest of the public key
}

// LoadDevKey reads dir's development key, creating it if there is none.
func LoadDevKey(dir string) (DevKey, error) {
	path := filepath.Join(dir, devKeyFile)
	raw, err := os.ReadFile(path) // #nosec G304 -- the development key directory the developer configured
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createDevKey(dir, path)
	case err != nil:
		return DevKey{}, fmt.Errorf("development key: %w", err)
	}
	k, err := parseDevKey(raw)
	if err != nil {
		return DevKey{}, fmt.Errorf("development key %s: %w", path, err)
	}
	return k, nil
}

func createDevKey(dir, path string) (DevKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return DevKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return DevKey{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return DevKey{}, fmt.Errorf("development key: %w", err)
	}
	// O_EXCL: two processes starting at once keep the first key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- see LoadDevKey
	if errors.Is(err, fs.ErrExist) {
		return LoadDevKey(dir)
	}
	if err != nil {
		return DevKey{}, fmt.Errorf("development key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		_ = f.Close()
		return DevKey{}, fmt.Errorf("development key: %w", err)
	}
	if err := f.Close(); err != nil {
		return DevKey{}, fmt.Errorf("development key: %w", err)
	}
	return devKey(priv), nil
}

func devKey(priv ed25519.PrivateKey) DevKey {
	sum := sha256.Sum256(priv.Public().(ed25519.PublicKey))
	return DevKey{Private: priv, ID: DevKeyIDPrefix + base64.RawURLEncoding.EncodeToString(sum[:9])}
}

// Public is the key a development server verifies with.
func (k DevKey) Public() Key { return Key{ID: k.ID, Public: k.Private.Public()} }

// Signer mints development tokens.
func (k DevKey) Signer() Signer {
	return Signer{Key: k.Private, KeyID: k.ID, Issuer: DevIssuer, Audience: DevAudience}
}

// IsDevKey reports whether k is a development key: its id has the
// development prefix, or it is the key in dir (when dir has one).
func IsDevKey(k Key, dir string) bool {
	if strings.HasPrefix(k.ID, DevKeyIDPrefix) {
		return true
	}
	raw, err := os.ReadFile(filepath.Join(dir, devKeyFile)) // #nosec G304 -- see LoadDevKey
	if err != nil {
		return false
	}
	dk, err := parseDevKey(raw)
	if err != nil {
		return false
	}
	pub, ok := k.Public.(ed25519.PublicKey)
	return ok && pub.Equal(dk.Private.Public())
}

func parseDevKey(raw []byte) (DevKey, error) {
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		return DevKey{}, errors.New("not a PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return DevKey{}, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return DevKey{}, fmt.Errorf("a %T, want Ed25519", k)
	}
	return devKey(priv), nil
}

// DevTokens mints development tokens for load generators and caches them:
// one per customer (customer and staff: it creates and places its orders,
// and may pay, ship and deliver them), and one of every role for the
// reads. Safe for concurrent use.
type DevTokens struct {
	s   Signer
	ttl time.Duration

	mu         sync.Mutex
	byCustomer map[string][]byte
}

// NewDevTokens loads (or makes) dir's development key; tokens last ttl.
func NewDevTokens(dir string, ttl time.Duration) (*DevTokens, error) {
	k, err := LoadDevKey(dir)
	if err != nil {
		return nil, err
	}
	return &DevTokens{s: k.Signer(), ttl: ttl, byCustomer: map[string][]byte{}}, nil
}

// Customer is the Authorization header value of customer's commands.
func (d *DevTokens) Customer(customer []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h, ok := d.byCustomer[string(customer)]; ok {
		return h
	}
	tok, err := d.s.Mint(Token{Subject: string(customer), Roles: []Role{Customer, Staff}, TTL: d.ttl})
	if err != nil { // an Ed25519 key never fails to sign
		panic(err)
	}
	h := []byte("Bearer " + tok)
	d.byCustomer[string(customer)] = h
	return h
}

// Operator is the Authorization header value of a token of every role.
func (d *DevTokens) Operator() string {
	tok, err := d.s.Mint(Token{Subject: "bench", Roles: Roles, TTL: d.ttl})
	if err != nil {
		panic(err)
	}
	return "Bearer " + tok
}
