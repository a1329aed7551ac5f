package main

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/testenv"
)

// TestServeRefusesToStartWithoutRealAuthentication: a production start
// needs an identity provider's keys, issuer and audience, and refuses the
// development key and issuer; the development flag trusts the development
// key alone.
func TestServeRefusesToStartWithoutRealAuthentication(t *testing.T) {
	dev := t.TempDir()
	k, err := auth.LoadDevKey(dev)
	if err != nil {
		t.Fatal(err)
	}
	devPEM := filepath.Join(t.TempDir(), "dev.pem")
	writePublicPEM(t, devPEM, k)
	inDevDir := filepath.Join(dev, "copy.pem")
	writePublicPEM(t, inDevDir, k)
	base := []string{"--database-url=postgres://orderflow@127.0.0.1:5432/orderflow", "--auth-dev-dir=" + dev}
	idp := []string{"--auth-issuer=https://idp.example.com/", "--auth-audience=orderflow"}
	bad := map[string]struct {
		args []string
		want string
	}{
		"no authentication at all":   {nil, "authentication needs keys"},
		"keys without an issuer":     {[]string{"--auth-jwks-url=https://idp.example.com/jwks", "--auth-audience=orderflow"}, "ORDERFLOW_AUTH_ISSUER is required"},
		"keys without an audience":   {[]string{"--auth-jwks-url=https://idp.example.com/jwks", "--auth-issuer=https://idp.example.com/"}, "ORDERFLOW_AUTH_AUDIENCE is required"},
		"the development issuer":     {[]string{"--auth-jwks-url=https://idp.example.com/jwks", "--auth-issuer=" + auth.DevIssuer, "--auth-audience=orderflow"}, "development tokens' issuer"},
		"the development key":        {append([]string{"--auth-key-files=" + devPEM}, idp...), "is the development key"},
		"a key in the dev directory": {append([]string{"--auth-key-files=" + inDevDir}, idp...), "development key directory"},
		"a JWKS URL over plain HTTP": {append([]string{"--auth-jwks-url=http://idp.example.com/jwks"}, idp...), "want https://"},
		"the dev flag with real keys": {append([]string{"--auth-dev", "--auth-jwks-url=https://idp.example.com/jwks"}, idp...),
			"trusts the development key only"},
	}
	for name, c := range bad {
		t.Run("refuses "+name, func(t *testing.T) {
			stderr := captureStderr(t, func() {
				if _, err := parseServe(append(base, c.args...)); err == nil {
					t.Errorf("%v accepted", c.args)
				}
			})
			if !strings.Contains(stderr, c.want) {
				t.Errorf("the refusal does not say %q:\n%s", c.want, stderr)
			}
		})
	}
	for name, args := range map[string][]string{
		"a JWKS URL":           append([]string{"--auth-jwks-url=https://idp.example.com/jwks"}, idp...),
		"the development flag": {"--auth-dev"},
	} {
		t.Run("accepts "+name, func(t *testing.T) {
			if _, err := parseServe(append(base, args...)); err != nil {
				t.Errorf("%v refused", args)
			}
		})
	}
}

// TestTheDevelopmentFlowServesTokensOfOrderflowToken: `orderflow token`
// makes the development key on first use, a server with
// ORDERFLOW_AUTH_DEV=true says loudly that it trusts it and accepts its
// tokens, and a token of the test identity provider is not one of them.
func TestTheDevelopmentFlowServesTokensOfOrderflowToken(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "dev-jwt")
	mint := exec.Command(testenv.Binary(t), "token", "--sub", "c-42", "--role", "customer", "--dev-dir", dir) // #nosec G204 -- the binary the test built
	mint.Env = cleanEnv()
	out, err := mint.Output()
	if err != nil {
		t.Fatalf("orderflow token: %v", err)
	}
	tok := strings.TrimSpace(string(out))
	srv := testenv.New(t).Serve(t, "ORDERFLOW_ROLES=api", "ORDERFLOW_AUTH_DEV=true", "ORDERFLOW_AUTH_DEV_DIR="+dir,
		"ORDERFLOW_AUTH_KEY_FILES=", "ORDERFLOW_AUTH_ISSUER=", "ORDERFLOW_AUTH_AUDIENCE=")
	if b, _ := os.ReadFile(srv.LogPath); !strings.Contains(string(b), "DEVELOPMENT AUTHENTICATION") {
		srv.Fatalf(t, "no warning of development authentication")
	}
	get := func(authz string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/customers/c-42/stats", nil)
		req.Header.Set("Authorization", authz)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res.StatusCode
	}
	if s := get("Bearer " + tok); s != http.StatusNotFound { // accepted: c-42 has no orders yet
		t.Errorf("the development token: %d, want 404 customer-not-found", s)
	}
	if s := get(testenv.Bearer(t, "c-42", auth.Customer)); s != http.StatusUnauthorized {
		t.Errorf("a token of another issuer and key: %d, want 401", s)
	}
}

func writePublicPEM(t *testing.T, path string, k auth.DevKey) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Private.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// captureStderr runs f with os.Stderr redirected, and returns what it
// wrote there (parseServe reports its problems on stderr).
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	f()
	os.Stderr = old
	_ = w.Close()
	return <-done
}
