package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/MicahParks/jwkset"
)

// writeKey stores a public key with the one algorithm its type signs with
// (see keyFits): a token claiming another algorithm for its kid is refused
// by keyfunc before any signature check.
func writeKey(ctx context.Context, s jwkset.Storage, k Key) error {
	var alg jwkset.ALG
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		alg = jwkset.AlgRS256
	case *ecdsa.PublicKey:
		alg = jwkset.AlgES256
	case ed25519.PublicKey:
		alg = jwkset.AlgEdDSA
	default:
		return fmt.Errorf("auth: key %q: a %T cannot verify RS256, ES256 or EdDSA", k.ID, pub)
	}
	if !keyFits(string(alg), k.Public) {
		return fmt.Errorf("auth: key %q: RSA keys need 2048 bits or more, EC keys the P-256 curve", k.ID)
	}
	jwk, err := jwkset.NewJWKFromKey(k.Public, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
		ALG: alg, KID: k.ID, USE: jwkset.UseSig}})
	if err != nil {
		return fmt.Errorf("auth: key %q: %w", k.ID, err)
	}
	return s.KeyWrite(ctx, jwk)
}

// loadKeyFile reads a JWKS document (a file whose content is a JSON
// object) or PEM public keys; a PEM key's id is the file name without its
// extension.
func loadKeyFile(ctx context.Context, s jwkset.Storage, path string) error {
	raw, err := os.ReadFile(path) // #nosec G304 -- a key file the operator configured
	if err != nil {
		return fmt.Errorf("auth: key file: %w", err)
	}
	if strings.HasPrefix(strings.TrimSpace(string(raw)), "{") {
		return loadJWKS(ctx, s, path, raw)
	}
	id := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	n := 0
	for rest := raw; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" && block.Type != "RSA PUBLIC KEY" {
			return fmt.Errorf("auth: key file %s: a %q block; want public keys only (PUBLIC KEY, RSA PUBLIC KEY)", path, block.Type)
		}
		pub, err := jwkset.LoadX509KeyInfer(block)
		if err != nil {
			return fmt.Errorf("auth: key file %s: %w", path, err)
		}
		kid := id
		if n > 0 {
			kid = fmt.Sprintf("%s-%d", id, n+1)
		}
		if err := writeKey(ctx, s, Key{ID: kid, Public: pub}); err != nil {
			return fmt.Errorf("%w (file %s)", err, path)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("auth: key file %s holds no PEM public key and is not a JWKS document", path)
	}
	return nil
}

// loadJWKS reads the public part of every key of a JWKS document; keys of
// types this server does not verify with (HMAC "oct", encryption keys) are
// refused: a key file is configuration, and a surprise in it is an error.
func loadJWKS(ctx context.Context, s jwkset.Storage, path string, raw []byte) error {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("auth: JWKS file %s: %w", path, err)
	}
	if len(set.Keys) == 0 {
		return fmt.Errorf("auth: JWKS file %s has no keys", path)
	}
	for i, m := range set.Keys {
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			return fmt.Errorf("auth: JWKS file %s, key %d: %w", path, i, err)
		}
		if m.USE == jwkset.UseEnc {
			return fmt.Errorf("auth: JWKS file %s, key %q is an encryption key", path, m.KID)
		}
		if err := writeKey(ctx, s, Key{ID: m.KID, Public: jwk.Key()}); err != nil {
			return fmt.Errorf("%w (file %s)", err, path)
		}
	}
	return nil
}

// LoadKeys returns the public keys of key files as Verifier would load
// them: serve compares them with the development key.
func LoadKeys(ctx context.Context, files []string) ([]Key, error) {
	s := jwkset.NewMemoryStorage()
	for _, f := range files {
		if err := loadKeyFile(ctx, s, f); err != nil {
			return nil, err
		}
	}
	jwks, err := s.KeyReadAll(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Key, 0, len(jwks))
	for _, j := range jwks {
		out = append(out, Key{ID: j.Marshal().KID, Public: j.Key()})
	}
	return out, nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
