package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/orderflow/orderflow/internal/auth"
)

// now is the verifiers' clock in these tests: expiry is checked against
// it, never against the machine's time.
var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

const (
	issuer   = "https://idp.example.com/"
	audience = "orderflow-api"
)

// keys are the test's signing keys, made once.
var keys = sync.OnceValue(func() (k struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
	ed2 ed25519.PrivateKey // published later: a rotation
	bad ed25519.PrivateKey // never published
}) {
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	_, k.ed, _ = ed25519.GenerateKey(rand.Reader)
	_, k.ed2, _ = ed25519.GenerateKey(rand.Reader)
	_, k.bad, _ = ed25519.GenerateKey(rand.Reader)
	return k
})

// claims are a valid token's claims; tests change what they attack.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": issuer, "aud": audience, "sub": "c-42", "roles": []string{"customer"},
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func sign(t testing.TB, method jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwksServer serves a JWK Set that a test can change, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    map[string]any // kid → public key
	fetches atomic.Int64
}

func newJWKSServer(t testing.TB, pub map[string]any) *jwksServer {
	s := &jwksServer{keys: pub}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		set := jwkset.NewMemoryStorage()
		for kid, k := range s.keys {
			jwk, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
			if err != nil {
				t.Error(err)
				return
			}
			_ = set.KeyWrite(r.Context(), jwk)
		}
		raw, err := set.JSONPublic(r.Context())
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(kid string, pub any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[kid] = pub
}

func newVerifier(t testing.TB, cfg auth.Config) *auth.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg.Issuer, cfg.Audience, cfg.Now = issuer, audience, func() time.Time { return now }
	v, err := auth.NewVerifier(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTokensAreVerifiedAgainstTheJWKS(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, map[string]any{"rsa": &k.rsa.PublicKey, "ec": &k.ec.PublicKey, "ed": k.ed.Public()})
	v := newVerifier(t, auth.Config{JWKSURL: srv.URL, UnknownKeyInterval: time.Hour})

	expired := claims()
	expired["exp"] = now.Add(-time.Minute).Unix()
	withinLeeway := claims()
	withinLeeway["exp"] = now.Add(-10 * time.Second).Unix()
	early := claims()
	early["nbf"] = now.Add(5 * time.Minute).Unix()
	issuedLater := claims()
	issuedLater["iat"] = now.Add(5 * time.Minute).Unix()
	wrongIss := claims()
	wrongIss["iss"] = "https://evil.example.com/"
	wrongAud := claims()
	wrongAud["aud"] = "another-api"
	noExp := claims()
	delete(noExp, "exp")
	noSub := claims()
	delete(noSub, "sub")
	controlSub := claims()
	controlSub["sub"] = "c-42\n"
	noRoles := claims()
	delete(noRoles, "roles")
	spaced := claims()
	spaced["roles"] = "staff analyst offline_access"
	pemOfRSA := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&k.rsa.PublicKey))})

	ed := sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, claims())
	parts := strings.Split(ed, ".")
	tampered := parts[0] + "." + parts[1] + "." + flip(parts[2])
	payloadSwapped := parts[0] + "." + swappedPayload(t) + "." + parts[2]

	tests := []struct {
		name, token string
		want        string // the description; "" = accepted
		roles       []auth.Role
	}{
		{name: "an RS256 token is accepted", token: sign(t, jwt.SigningMethodRS256, "rsa", k.rsa, claims()), roles: []auth.Role{auth.Customer}},
		{name: "an ES256 token is accepted", token: sign(t, jwt.SigningMethodES256, "ec", k.ec, claims()), roles: []auth.Role{auth.Customer}},
		{name: "an EdDSA token is accepted", token: ed, roles: []auth.Role{auth.Customer}},
		{name: "a token without kid is tried against the keys that fit its algorithm", token: sign(t, jwt.SigningMethodEdDSA, "", k.ed, claims()), roles: []auth.Role{auth.Customer}},
		{name: "alg none is refused", token: sign(t, jwt.SigningMethodNone, "ed", jwt.UnsafeAllowNoneSignatureType, claims()),
			want: "the token's signing algorithm is not accepted (RS256, ES256, EdDSA)"},
		{name: "HS256 with the RSA public key as its secret (key confusion) is refused",
			token: sign(t, jwt.SigningMethodHS256, "rsa", pemOfRSA, claims()), want: "the token's signing algorithm is not accepted (RS256, ES256, EdDSA)"},
		{name: "RS384, a valid RSA signature but not a pinned algorithm, is refused",
			token: sign(t, jwt.SigningMethodRS384, "rsa", k.rsa, claims()), want: "the token's signing algorithm is not accepted (RS256, ES256, EdDSA)"},
		{name: "ES256 claiming the RSA key's kid is refused", token: sign(t, jwt.SigningMethodES256, "rsa", k.ec, claims()),
			want: "the token's algorithm does not match its key"},
		{name: "a wrong issuer is refused", token: sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, wrongIss), want: "the token's issuer is not accepted"},
		{name: "a wrong audience is refused", token: sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, wrongAud), want: "the token's audience is not accepted"},
		{name: "an expired token is refused", token: sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, expired), want: "the token has expired"},
		{name: "a token expired within the leeway is accepted", token: sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, withinLeeway), roles: []auth.Role{auth.Customer}},
		{name: "a token whose nbf is in the future is refused", token: sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, early), want: "the token is not valid yet"},
		{name: "a token issued in the future is refused", token: sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, issuedLater), want: "the token was issued in the future"},
		{name: "a token without exp is refused", token: sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, noExp), want: "the token lacks a required claim (exp, iss, aud)"},
		{name: "a token without sub is refused", token: sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, noSub), want: "the token's subject is missing or unusable"},
		{name: "a subject with a control character is refused", token: sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, controlSub), want: "the token's subject is missing or unusable"},
		{name: "a tampered signature is refused", token: tampered, want: "the token's signature is invalid"},
		{name: "a payload swapped under a valid signature is refused", token: payloadSwapped, want: "the token's signature is invalid"},
		{name: "a token signed by a key nobody published, under a published kid, is refused",
			token: sign(t, jwt.SigningMethodEdDSA, "ed", k.bad, claims()), want: "the token's signature is invalid"},
		{name: "garbage is refused", token: "not.a.token", want: "the token is malformed"},
		{name: "a token without roles is valid and grants nothing", token: sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, noRoles)},
		{name: "roles may be one space-separated string; unknown ones are dropped",
			token: sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, spaced), roles: []auth.Role{auth.Staff, auth.Analyst}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.token)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("accepted: %+v", p)
			case tt.want != "":
				if err.Code != "invalid_token" || err.Description != tt.want {
					t.Fatalf("error %q %q, want invalid_token %q", err.Code, err.Description, tt.want)
				}
				return
			}
			if p.Subject != "c-42" || !equalRoles(p.Roles, tt.roles) || p.Expires.IsZero() {
				t.Errorf("principal %+v, want c-42 with %v", p, tt.roles)
			}
		})
	}
}

// TestUnknownKeyIDsFetchTheJWKSAtMostOncePerInterval sends a burst of
// tokens naming key ids the set does not have: the first causes one
// fetch, the others none (they are refused at once, never queued), and a
// rotation published meanwhile is found by that one fetch.
func TestUnknownKeyIDsFetchTheJWKSAtMostOncePerInterval(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, map[string]any{"ed": k.ed.Public()})
	v := newVerifier(t, auth.Config{JWKSURL: srv.URL, UnknownKeyInterval: time.Hour, RefreshInterval: time.Hour})
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}
	// The key is rotated in at the identity provider.
	srv.publish("ed-2", k.ed2.Public())
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodEdDSA, "ed-2", k.ed2, claims())); err != nil {
		t.Fatalf("a token of the rotated-in key: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the first unknown kid, want 2", n)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodEdDSA, "forged-"+string(rune('a'+i%26)), k.bad, claims()))
			if err == nil || err.Description != "the token's signing key is not known" {
				t.Errorf("unknown kid: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("%d fetches after 50 unknown kids, want still 2: at most one per interval", n)
	}
	// The keys already fetched keep working meanwhile.
	for _, tok := range []string{sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, claims()), sign(t, jwt.SigningMethodEdDSA, "ed-2", k.ed2, claims())} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("a known key after the burst: %v", err)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	k := keys()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rsaPEM := write("idp-rsa.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&k.rsa.PublicKey))}))
	set := jwkset.NewMemoryStorage()
	jwk, err := jwkset.NewJWKFromKey(k.ed.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "ed"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = set.KeyWrite(context.Background(), jwk)
	raw, _ := set.JSONPublic(context.Background())
	jwks := write("keys.json", raw)
	v := newVerifier(t, auth.Config{KeyFiles: []string{rsaPEM, jwks}})

	for name, tok := range map[string]string{
		"a PEM key answers to its file name": sign(t, jwt.SigningMethodRS256, "idp-rsa", k.rsa, claims()),
		"a PEM key answers without kid":      sign(t, jwt.SigningMethodRS256, "", k.rsa, claims()),
		"a JWKS file's key answers its kid":  sign(t, jwt.SigningMethodEdDSA, "ed", k.ed, claims()),
	} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodEdDSA, "elsewhere", k.ed, claims())); err == nil {
		t.Error("an unknown kid with key files (nothing to refresh) was accepted")
	}

	private := write("private.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(k.ed))}))
	hmac := write("hmac.json", []byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`))
	for _, f := range []string{private, hmac, write("empty.pem", nil)} {
		if _, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: issuer, Audience: audience, KeyFiles: []string{f}}); err == nil {
			t.Errorf("key file %s accepted", filepath.Base(f))
		}
	}
}

func TestConfigIsValidated(t *testing.T) {
	for name, c := range map[string]auth.Config{
		"no issuer":               {Audience: audience, JWKSURL: "https://idp.example.com/jwks"},
		"no audience":             {Issuer: issuer, JWKSURL: "https://idp.example.com/jwks"},
		"no keys":                 {Issuer: issuer, Audience: audience},
		"a plain-http JWKS URL":   {Issuer: issuer, Audience: audience, JWKSURL: "http://idp.example.com/jwks"},
		"a leeway of ten minutes": {Issuer: issuer, Audience: audience, JWKSURL: "https://idp.example.com/jwks", Leeway: 10 * time.Minute},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := (auth.Config{Issuer: issuer, Audience: audience, JWKSURL: "http://127.0.0.1:1/jwks"}).Validate(); err != nil {
		t.Errorf("a loopback http JWKS URL: %v", err)
	}
	// A JWKS URL that does not answer stops the start: a typo would
	// otherwise refuse every token, silently.
	if _, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: issuer, Audience: audience,
		JWKSURL: "http://127.0.0.1:1/jwks", FetchTimeout: time.Second}); err == nil {
		t.Error("an unreachable JWKS URL was accepted")
	}
}

func TestDevKeyIsMadeOnceAndSignsTokensTheDevVerifierAccepts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev-jwt")
	k1, err := auth.LoadDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := auth.LoadDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID != k2.ID || !strings.HasPrefix(k1.ID, auth.DevKeyIDPrefix) {
		t.Fatalf("ids %q %q", k1.ID, k2.ID)
	}
	if st, err := os.Stat(filepath.Join(dir, "ed25519.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	signer := k1.Signer()
	signer.Now = func() time.Time { return now }
	tok, err := signer.Mint(auth.Token{Subject: "dev", Roles: []auth.Role{auth.Staff, auth.Admin}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: auth.DevIssuer, Audience: auth.DevAudience,
		Keys: []auth.Key{k2.Public()}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	p, verr := v.Verify(context.Background(), tok)
	if verr != nil || p.Subject != "dev" || !equalRoles(p.Roles, []auth.Role{auth.Staff, auth.Admin}) {
		t.Fatalf("%+v %v", p, verr)
	}
	if !auth.IsDevKey(k1.Public(), dir) || !auth.IsDevKey(auth.Key{ID: "x", Public: k1.Private.Public()}, dir) {
		t.Error("the development key is not recognised")
	}
	if auth.IsDevKey(auth.Key{ID: "x", Public: keys().ed.Public()}, dir) {
		t.Error("another key is taken for the development key")
	}
}

func equalRoles(a, b []auth.Role) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// flip changes the signature's first character.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// swappedPayload is a payload naming a staff subject instead: what an attacker
// would put under a signature it copied.
func swappedPayload(t testing.TB) string {
	t.Helper()
	c := claims()
	c["sub"], c["roles"] = "attacker", []string{"staff", "admin"}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
