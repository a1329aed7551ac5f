package auth

import (
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer mints tokens: `orderflow token` with the development key, and
// tests with a key of their own. Production tokens come from the identity
// provider, never from here.
type Signer struct {
	Key      crypto.Signer // an ed25519.PrivateKey: tokens are EdDSA
	KeyID    string
	Issuer   string
	Audience string
	// Now is the clock of iat, nbf and exp. Nil means time.Now.
	Now func() time.Time
}

// Token is what a Signer puts in a token beyond iss and aud.
type Token struct {
	Subject string
	Roles   []Role
	// TTL is the token's life from now. Zero means an hour.
	TTL time.Duration
	// NotBefore, when set, is the nbf (else now).
	NotBefore time.Time
}

// Mint signs a token.
func (s Signer) Mint(t Token) (string, error) {
	if t.Subject == "" {
		return "", errors.New("auth: a token needs a subject")
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	at := now().Truncate(time.Second)
	if t.TTL == 0 {
		t.TTL = time.Hour
	}
	nbf := at
	if !t.NotBefore.IsZero() {
		nbf = t.NotBefore
	}
	roles := make([]string, len(t.Roles))
	for i, r := range t.Roles {
		roles[i] = string(r)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, mintClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.Issuer, Audience: jwt.ClaimStrings{s.Audience}, Subject: t.Subject,
			IssuedAt: jwt.NewNumericDate(at), NotBefore: jwt.NewNumericDate(nbf), ExpiresAt: jwt.NewNumericDate(at.Add(t.TTL)),
		},
		Roles: roles,
	})
	if s.KeyID != "" {
		tok.Header["kid"] = s.KeyID
	}
	out, err := tok.SignedString(s.Key)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return out, nil
}

type mintClaims struct {
	jwt.RegisteredClaims
	Roles []string `json:"roles"`
}
