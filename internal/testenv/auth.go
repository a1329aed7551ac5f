package testenv

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/orderflow/orderflow/internal/auth"
)

// The test tokens' issuer and audience. Serve configures the binary with
// them and the test key, as production is configured with an identity
// provider's: the development key plays no part in tests.
const (
	TokenIssuer   = "https://orderflow.test/" // #nosec G101 -- an issuer URL, not a credential
	TokenAudience = "orderflow-test"
	tokenKeyID    = "orderflow-test-key"
)

// testKey is this test process's signing key, made once.
var testKey = sync.OnceValue(func() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

func signer() auth.Signer {
	return auth.Signer{Key: testKey(), KeyID: tokenKeyID, Issuer: TokenIssuer, Audience: TokenAudience}
}

// Token mints a token for sub with roles, valid for an hour.
func Token(t testing.TB, sub string, roles ...auth.Role) string {
	t.Helper()
	return TokenFor(t, auth.Token{Subject: sub, Roles: roles})
}

// TokenFor mints any token the test key can sign (a short TTL, a future
// nbf).
func TokenFor(t testing.TB, tok auth.Token) string {
	t.Helper()
	s, err := signer().Mint(tok)
	if err != nil {
		t.Fatalf("testenv: mint: %v", err)
	}
	return s
}

// Bearer is Token as an Authorization header value.
func Bearer(t testing.TB, sub string, roles ...auth.Role) string {
	t.Helper()
	return "Bearer " + Token(t, sub, roles...)
}

// The principals the tests use most: Staff drives orders through their
// life and reads everything an order has; Operator is every role, for a
// test that is not about authorization and calls every kind of route.
const (
	StaffSubject    = "staff-test"
	OperatorSubject = "operator-test"
)

// Operator is a token of every role. A customer's grants are of its own
// orders only, so a test creating orders with it names OperatorSubject as
// their customer_id.
func Operator(t testing.TB) string {
	t.Helper()
	return Bearer(t, OperatorSubject, auth.Roles...)
}

// Verifier accepts the test tokens, for a test that serves handlers behind
// auth.Authenticate itself.
func Verifier(t testing.TB) *auth.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: TokenIssuer, Audience: TokenAudience,
		Keys: []auth.Key{{ID: tokenKeyID, Public: testKey().Public()}}})
	if err != nil {
		t.Fatalf("testenv: verifier: %v", err)
	}
	return v
}

// KeyFile writes the test key's JWKS into the test's temporary directory
// and returns its path: ORDERFLOW_AUTH_KEY_FILES of a served binary.
func KeyFile(t testing.TB) string {
	t.Helper()
	jwk, err := jwkset.NewJWKFromKey(testKey().Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
		KID: tokenKeyID, ALG: jwkset.AlgEdDSA, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "test-jwks.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// authEnv is what Serve gives the binary: the test key, issuer and
// audience, as a production deployment names its identity provider's.
func authEnv(t testing.TB) []string {
	return []string{
		"ORDERFLOW_AUTH_KEY_FILES=" + KeyFile(t),
		"ORDERFLOW_AUTH_ISSUER=" + TokenIssuer,
		"ORDERFLOW_AUTH_AUDIENCE=" + TokenAudience,
		"ORDERFLOW_AUTH_JWKS_URL=",
		"ORDERFLOW_AUTH_DEV=false",
	}
}

// expiresSoon is a token life for tests of expiry: long enough for any
// machine to open the connection, short enough not to slow the suite.
const expiresSoon = 3 * time.Second

// ExpiringToken is a token of roles for sub that expires in a few
// seconds: a test of what happens at expiry waits for it with Patience as
// its hang guard.
func ExpiringToken(t testing.TB, sub string, roles ...auth.Role) string {
	t.Helper()
	return TokenFor(t, auth.Token{Subject: sub, Roles: roles, TTL: expiresSoon})
}
