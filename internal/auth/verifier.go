package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Algorithms are the only signing algorithms a token may use, pinned with
// jwt.WithValidMethods: no "none", no HMAC (whose key would be a public
// key an attacker also has: the RS/HS confusion), nothing unlisted.
var Algorithms = []string{"RS256", "ES256", "EdDSA"}

// Defaults of Config.
const (
	DefaultRolesClaim = "roles"
	// DefaultLeeway absorbs clock skew between the issuer and this server
	// on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// DefaultRefreshInterval is how often a JWKS URL is fetched again, so
	// that a retired key stops being accepted and an announced one is ready.
	DefaultRefreshInterval = time.Hour
	// DefaultUnknownKeyInterval bounds the extra fetches a token with an
	// unknown key id causes (a key rotated in since the last refresh): at
	// most one per interval, whoever sends such tokens. A token with an
	// unknown kid beyond that is refused at once, never queued.
	DefaultUnknownKeyInterval = time.Minute
	// DefaultFetchTimeout bounds one JWKS fetch.
	DefaultFetchTimeout = 5 * time.Second
	// MaxSubjectLen bounds sub: it becomes the actor of every event the
	// request causes (append-only metadata) and a rate-limit key.
	MaxSubjectLen = 255
)

// Config says which tokens a Verifier accepts. Issuer, Audience and at
// least one key source are required.
type Config struct {
	// Issuer is the only accepted iss.
	Issuer string
	// Audience must be one of the token's aud values.
	Audience string
	// JWKSURL is fetched at start (a failure stops NewVerifier), every
	// RefreshInterval, and once per UnknownKeyInterval at most when a token
	// names a key id it does not have. https, or http to a loopback
	// address (tests, a sidecar).
	JWKSURL string
	// KeyFiles are PEM public keys (PKIX "PUBLIC KEY", or "RSA PUBLIC
	// KEY"; the key id is the file name without its extension) or JWKS
	// documents (.json), read once at start.
	KeyFiles []string
	// Keys are public keys given in memory (the development key).
	Keys []Key
	// RolesClaim names the claim holding the roles: a list of strings, or
	// one string of space-separated names. Default DefaultRolesClaim.
	RolesClaim string
	// Leeway, RefreshInterval, UnknownKeyInterval, FetchTimeout: zero
	// means the Default… constant.
	Leeway             time.Duration
	RefreshInterval    time.Duration
	UnknownKeyInterval time.Duration
	FetchTimeout       time.Duration
	// HTTPClient fetches the JWKS. Nil means a client with FetchTimeout.
	HTTPClient *http.Client
	// Now is the clock of exp, nbf and iat. Nil means time.Now.
	Now func() time.Time
	// Logger reports failed JWKS refreshes. Nil means none.
	Logger *slog.Logger
}

// Key is a public key with its key id (kid; may be empty).
type Key struct {
	ID     string
	Public any // *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey
}

func (c *Config) setDefaults() {
	if c.RolesClaim == "" {
		c.RolesClaim = DefaultRolesClaim
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.UnknownKeyInterval == 0 {
		c.UnknownKeyInterval = DefaultUnknownKeyInterval
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.FetchTimeout}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of c (after defaults).
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if strings.TrimSpace(c.Issuer) == "" {
		errs = append(errs, errors.New("auth: the issuer is required"))
	}
	if strings.TrimSpace(c.Audience) == "" {
		errs = append(errs, errors.New("auth: the audience is required"))
	}
	if c.JWKSURL == "" && len(c.KeyFiles) == 0 && len(c.Keys) == 0 {
		errs = append(errs, errors.New("auth: no keys: set a JWKS URL or key files"))
	}
	if c.JWKSURL != "" {
		if err := checkJWKSURL(c.JWKSURL); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		errs = append(errs, fmt.Errorf("auth: leeway %s: want 0 to 5m", c.Leeway))
	}
	if c.RefreshInterval < time.Second || c.UnknownKeyInterval < time.Second || c.FetchTimeout <= 0 {
		errs = append(errs, errors.New("auth: the JWKS refresh intervals must be at least 1s and the fetch timeout positive"))
	}
	return errors.Join(errs...)
}

// checkJWKSURL wants https, or plain http to a loopback host: keys fetched
// over plain HTTP across a network could be swapped by anyone on the path.
func checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("auth: JWKS URL %q is not a URL", s)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && (u.Hostname() == "localhost" || isLoopback(u.Hostname())):
		return nil
	}
	return fmt.Errorf("auth: JWKS URL %q: want https:// (plain http only to a loopback address)", s)
}

// Verifier checks bearer tokens. Safe for concurrent use.
type Verifier struct {
	cfg    Config
	keys   keyfunc.Keyfunc
	parser *jwt.Parser
}

// NewVerifier loads the keys (fetching the JWKS URL once) and returns a
// Verifier; the JWKS refresh goroutine runs until ctx ends.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	given := jwkset.NewMemoryStorage()
	for _, k := range cfg.Keys {
		if err := writeKey(ctx, given, k); err != nil {
			return nil, err
		}
	}
	for _, f := range cfg.KeyFiles {
		if err := loadKeyFile(ctx, given, f); err != nil {
			return nil, err
		}
	}
	storage := jwkset.Storage(given)
	if cfg.JWKSURL != "" {
		remote, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
			Client: cfg.HTTPClient, Ctx: ctx, HTTPTimeout: cfg.FetchTimeout, RefreshInterval: cfg.RefreshInterval,
			RefreshErrorHandler: func(ctx context.Context, err error) {
				cfg.Logger.ErrorContext(ctx, "auth: JWKS refresh failed; the keys fetched before stay in use", "url", cfg.JWKSURL, "err", err)
			},
		})
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS %s: %w", cfg.JWKSURL, err)
		}
		storage, err = jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
			Given:    given,
			HTTPURLs: map[string]jwkset.Storage{cfg.JWKSURL: remote},
			// RefreshUnknownKID waits for this limiter; verify passes a
			// context whose deadline is one fetch away, so a token that
			// would have to wait for the next allowed fetch is refused at
			// once (rate.Limiter.Wait fails fast past the deadline).
			RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.UnknownKeyInterval), 1),
			RateLimitWaitMax:  cfg.FetchTimeout,
		})
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS %s: %w", cfg.JWKSURL, err)
		}
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: storage, UseWhitelist: []jwkset.USE{jwkset.UseSig, ""}})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &Verifier{cfg: cfg, keys: kf, parser: jwt.NewParser(
		jwt.WithValidMethods(Algorithms),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	)}, nil
}

// TokenError is why a token was refused: RFC 6750's invalid_token, with a
// description safe to show the client (it names the failed check, never a
// key or the expected values).
type TokenError struct {
	// Code is the RFC 6750 error code: invalid_token, or invalid_request
	// for a malformed Authorization header. Empty when no token was sent.
	Code        string
	Description string
}

func (e *TokenError) Error() string { return e.Code + ": " + e.Description }

// Verify checks a token and returns its principal.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, *TokenError) {
	// A token naming an unknown key may cause one JWKS fetch (see
	// RefreshUnknownKID): bounded here, whatever the request's own
	// deadline.
	ctx, cancel := context.WithTimeout(ctx, v.cfg.FetchTimeout)
	defer cancel()
	c := &claims{rolesClaim: v.cfg.RolesClaim}
	if _, err := v.parser.ParseWithClaims(token, c, v.keyfunc(ctx)); err != nil {
		return Principal{}, &TokenError{Code: "invalid_token", Description: describe(err)}
	}
	p := Principal{Subject: c.Subject, Expires: c.ExpiresAt.Time}
	for _, name := range c.roles {
		if r := Role(name); containsRole(Roles, r) && !p.Has(r) {
			p.Roles = append(p.Roles, r)
		}
	}
	return p, nil
}

func containsRole(rs []Role, r Role) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// keyfunc is keyfunc/v3's, with each key held to the one algorithm its
// type signs with: an RSA key verifies RS256 only, a P-256 key ES256 only,
// an Ed25519 key EdDSA only. jwt refuses a key of the wrong Go type too;
// this also keeps a key set (a token without kid) to the keys that fit.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	inner := v.keys.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		got, err := inner(t)
		if err != nil {
			return nil, errUnknownKey
		}
		alg := t.Method.Alg()
		if set, ok := got.(jwt.VerificationKeySet); ok {
			var fit jwt.VerificationKeySet
			for _, k := range set.Keys {
				if keyFits(alg, k) {
					fit.Keys = append(fit.Keys, k)
				}
			}
			if len(fit.Keys) == 0 {
				return nil, errUnknownKey
			}
			return fit, nil
		}
		if !keyFits(alg, got) {
			return nil, errKeyMismatch
		}
		return got, nil
	}
}

var (
	errUnknownKey  = errors.New("no key for this token")
	errKeyMismatch = errors.New("the key does not sign with this algorithm")
	errSubject     = errors.New("the subject is missing or unusable")
)

func keyFits(alg string, key any) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == "RS256" && k.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		return alg == "ES256" && k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// describe turns jwt's error into the description the client gets.
func describe(err error) string {
	switch {
	case errors.Is(err, errUnknownKey):
		return "the token's signing key is not known"
	case errors.Is(err, errKeyMismatch):
		return "the token's algorithm does not match its key"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is malformed"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the token's signing algorithm is not accepted"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if strings.Contains(err.Error(), "signing method") {
			return "the token's signing algorithm is not accepted (RS256, ES256, EdDSA)"
		}
		return "the token's signature is invalid"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token was issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token's issuer is not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token's audience is not accepted"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the token lacks a required claim (exp, iss, aud)"
	case errors.Is(err, errSubject):
		return "the token's subject is missing or unusable"
	}
	return "the token is invalid"
}

// claims are the registered claims plus the roles claim, whose name is
// configured.
type claims struct {
	jwt.RegisteredClaims
	rolesClaim string
	roles      []string
}

func (c *claims) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &c.RegisteredClaims); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	raw, ok := all[c.rolesClaim]
	if !ok {
		return nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		c.roles = strings.Fields(one)
		return nil
	}
	if err := json.Unmarshal(raw, &c.roles); err != nil {
		return fmt.Errorf("claim %q: want a list of role names", c.rolesClaim)
	}
	return nil
}

// Validate is called by jwt's validator after the registered claims: the
// subject names the principal, so it must be there and printable.
func (c *claims) Validate() error {
	s := c.Subject
	if s == "" || len(s) > MaxSubjectLen || !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return errSubject
	}
	return nil
}
