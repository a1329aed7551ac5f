package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/orderflow/orderflow/internal/auth"
)

// authConfig is how serve checks tokens (README "Authentication and
// authorization"): an identity provider's keys, issuer and audience, or,
// with the loudly logged development flag alone, the local development key.
type authConfig struct {
	jwksURL            string
	keyFiles           string
	issuer             string
	audience           string
	rolesClaim         string
	leeway             time.Duration
	refreshInterval    time.Duration
	unknownKeyInterval time.Duration
	dev                bool
	devDir             string
}

func (a *authConfig) register(f *flags) {
	f.string(&a.jwksURL, "auth-jwks-url", "ORDERFLOW_AUTH_JWKS_URL", "", "the identity provider's JWKS URL (https); fetched at start, every --auth-jwks-refresh-interval, and at most once per --auth-jwks-unknown-kid-interval for a token with an unknown key id")
	f.string(&a.keyFiles, "auth-key-files", "ORDERFLOW_AUTH_KEY_FILES", "", "comma-separated PEM public keys (key id: the file name without extension) or JWKS files, instead of or besides a JWKS URL")
	f.string(&a.issuer, "auth-issuer", "ORDERFLOW_AUTH_ISSUER", "", "the only accepted token issuer (iss)")
	f.string(&a.audience, "auth-audience", "ORDERFLOW_AUTH_AUDIENCE", "", "the audience (aud) tokens must name")
	f.string(&a.rolesClaim, "auth-roles-claim", "ORDERFLOW_AUTH_ROLES_CLAIM", auth.DefaultRolesClaim, "the claim holding the roles (customer, staff, analyst, admin): a list, or a space-separated string")
	f.duration(&a.leeway, "auth-leeway", "ORDERFLOW_AUTH_LEEWAY", auth.DefaultLeeway, "clock skew allowed on exp, nbf and iat")
	f.duration(&a.refreshInterval, "auth-jwks-refresh-interval", "ORDERFLOW_AUTH_JWKS_REFRESH_INTERVAL", auth.DefaultRefreshInterval, "how often the JWKS URL is fetched again")
	f.duration(&a.unknownKeyInterval, "auth-jwks-unknown-kid-interval", "ORDERFLOW_AUTH_JWKS_UNKNOWN_KID_INTERVAL", auth.DefaultUnknownKeyInterval, "at most one extra JWKS fetch per interval for tokens naming an unknown key id (a rotation); other such tokens are refused at once")
	f.bool(&a.dev, "auth-dev", "ORDERFLOW_AUTH_DEV", false, "DEVELOPMENT ONLY: trust the local development key (orderflow token); refused together with real keys")
	f.string(&a.devDir, "auth-dev-dir", "ORDERFLOW_AUTH_DEV_DIR", auth.DefaultDevDir, "directory of the development key (git-ignored; made on first use)")
}

func (a *authConfig) validate(f *flags) {
	haveKeys := a.jwksURL != "" || a.keyFiles != ""
	if a.dev {
		f.check(haveKeys, "ORDERFLOW_AUTH_DEV=true trusts the development key only: unset ORDERFLOW_AUTH_JWKS_URL and ORDERFLOW_AUTH_KEY_FILES, or the flag")
		return
	}
	f.check(!haveKeys, "authentication needs keys: ORDERFLOW_AUTH_JWKS_URL or ORDERFLOW_AUTH_KEY_FILES (for development only: ORDERFLOW_AUTH_DEV=true, as make run does)")
	f.check(a.issuer == "", "ORDERFLOW_AUTH_ISSUER is required: the issuer of the tokens to accept")
	f.check(a.audience == "", "ORDERFLOW_AUTH_AUDIENCE is required: the audience the tokens must name")
	if !haveKeys || a.issuer == "" || a.audience == "" {
		return
	}
	f.check(a.issuer == auth.DevIssuer, "ORDERFLOW_AUTH_ISSUER=%s is the development tokens' issuer; a production start refuses it (ORDERFLOW_AUTH_DEV=true is for development)", auth.DevIssuer)
	for _, file := range splitList(a.keyFiles) {
		f.check(isWithin(file, a.devDir), "ORDERFLOW_AUTH_KEY_FILES: %s is in the development key directory; a production start refuses it", file)
	}
	if a.keyFiles != "" {
		keys, err := auth.LoadKeys(context.Background(), splitList(a.keyFiles))
		f.check(err != nil, "ORDERFLOW_AUTH_KEY_FILES: %v", err)
		for _, k := range keys {
			f.check(auth.IsDevKey(k, a.devDir), "ORDERFLOW_AUTH_KEY_FILES: key %q is the development key; a production start refuses it", k.ID)
		}
	}
	cfg := a.verifierConfig(nil)
	if err := cfg.Validate(); err != nil {
		f.check(true, "%v", err)
	}
}

func isWithin(file, dir string) bool {
	f, err1 := filepath.Abs(file)
	d, err2 := filepath.Abs(dir)
	return err1 == nil && err2 == nil && (f == d || strings.HasPrefix(f, d+string(filepath.Separator)))
}

func (a *authConfig) verifierConfig(log *slog.Logger) auth.Config {
	return auth.Config{Issuer: a.issuer, Audience: a.audience, JWKSURL: a.jwksURL, KeyFiles: splitList(a.keyFiles),
		RolesClaim: a.rolesClaim, Leeway: a.leeway, RefreshInterval: a.refreshInterval,
		UnknownKeyInterval: a.unknownKeyInterval, Logger: log}
}

// verifier builds the token verifier; its JWKS refresh ends with ctx.
func (a *authConfig) verifier(ctx context.Context, log *slog.Logger) (*auth.Verifier, error) {
	if !a.dev {
		log.Info("authentication", "issuer", a.issuer, "audience", a.audience, "jwks_url", a.jwksURL, "key_files", a.keyFiles)
		return auth.NewVerifier(ctx, a.verifierConfig(log))
	}
	k, err := auth.LoadDevKey(a.devDir)
	if err != nil {
		return nil, err
	}
	log.Warn("DEVELOPMENT AUTHENTICATION: tokens signed by the local development key are trusted (ORDERFLOW_AUTH_DEV=true); anyone who can read "+a.devDir+" can mint any role. Never run a deployment like this: configure ORDERFLOW_AUTH_JWKS_URL (or _KEY_FILES), _ISSUER and _AUDIENCE (README, Authentication and authorization)",
		"key_id", k.ID, "dir", a.devDir)
	cfg := a.verifierConfig(log)
	cfg.Issuer, cfg.Audience, cfg.Keys = auth.DevIssuer, auth.DevAudience, []auth.Key{k.Public()}
	return auth.NewVerifier(ctx, cfg)
}

// runToken is `orderflow token`: a development token, signed with the
// development key (made on first use).
func runToken(_ context.Context, args []string) error {
	var (
		sub, roles, dir string
		ttl             time.Duration
	)
	f := newFlags("token", "Prints a development bearer token for a server started with ORDERFLOW_AUTH_DEV=true (make run): signed with the local development key in --dev-dir, made there on first use. Production tokens come from your identity provider.")
	f.string(&sub, "sub", "ORDERFLOW_TOKEN_SUB", "", "the subject: for a customer, its customer id")
	f.string(&roles, "role", "ORDERFLOW_TOKEN_ROLE", "", "comma-separated roles: customer, staff, analyst, admin")
	f.duration(&ttl, "ttl", "ORDERFLOW_TOKEN_TTL", time.Hour, "how long the token is valid")
	f.string(&dir, "dev-dir", "ORDERFLOW_AUTH_DEV_DIR", auth.DefaultDevDir, "directory of the development key")
	var rs []auth.Role
	if err := f.parse(args, func() {
		f.check(sub == "", "--sub is required")
		var err error
		rs, err = auth.ParseRoles(roles)
		f.check(err != nil, "--role: %v", err)
		f.check(err == nil && len(rs) == 0, "--role is required (customer, staff, analyst, admin)")
		f.check(ttl <= 0 || ttl > 30*24*time.Hour, "--ttl must be positive and at most 720h")
	}); err != nil {
		return err
	}
	k, err := auth.LoadDevKey(dir)
	if err != nil {
		return err
	}
	tok, err := k.Signer().Mint(auth.Token{Subject: sub, Roles: rs, TTL: ttl})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(os.Stdout, tok)
	return err
}
