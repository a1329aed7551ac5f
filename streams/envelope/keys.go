package envelope

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// MinSecretBytes is the shortest secret a Key may have: HMAC-SHA256's
// output size, below which a key is weaker than the MAC (RFC 2104, 3).
const MinSecretBytes = 32

// keyID is what a key id may be: it is written into every signature header
// (between colons) and into logs.
var keyID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Key is one HMAC-SHA256 key. ID names it in the signature header; Secret
// is never printed (String, GoString and LogValue redact it).
type Key struct {
	ID     string
	Secret []byte
}

// Validate checks the id's form and the secret's length.
func (k Key) Validate() error {
	if !keyID.MatchString(k.ID) {
		return fmt.Errorf("signing key id %q: want 1 to 64 of A-Z a-z 0-9 . _ -", truncate(k.ID))
	}
	if len(k.Secret) < MinSecretBytes {
		return fmt.Errorf("signing key %s: the secret has %d bytes, want at least %d", k.ID, len(k.Secret), MinSecretBytes)
	}
	return nil
}

// String is the key's id with the secret redacted.
func (k Key) String() string { return k.ID + "=<redacted>" }

// GoString redacts the secret from %#v too.
func (k Key) GoString() string { return "envelope.Key{" + k.String() + "}" }

// LogValue makes slog print the redacted form.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON redacts the secret from JSON (and so from slog's JSON
// handler, which marshals slices of keys without LogValue).
func (k Key) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// GenerateKey makes a key with a random secret of MinSecretBytes.
func GenerateKey(id string) (Key, error) {
	k := Key{ID: id, Secret: make([]byte, MinSecretBytes)}
	if _, err := rand.Read(k.Secret); err != nil {
		return Key{}, fmt.Errorf("generate signing key: %w", err)
	}
	return k, k.Validate()
}

// ParseKeys reads keys written as "<id>=<secret in standard base64>",
// separated by commas or newlines; blank entries and lines starting with #
// are skipped (a key file may have comments). Ids must be distinct. Errors
// name the entry by its number only: what stands before the first "=" is
// the secret itself when someone pasted a bare one.
func ParseKeys(s string) ([]Key, error) {
	var (
		keys []Key
		errs []error
		seen = map[string]bool{}
	)
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, entry := range strings.Split(line, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			n++
			id, secret, ok := strings.Cut(entry, "=")
			b, err := decodeSecret(secret)
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("signing key %d: want <id>=<base64 secret>", n))
			case !keyID.MatchString(id):
				errs = append(errs, fmt.Errorf("signing key %d: the id must be 1 to 64 of A-Z a-z 0-9 . _ -", n))
			case err != nil:
				errs = append(errs, fmt.Errorf("signing key %d: the secret is not standard base64", n))
			case len(b) < MinSecretBytes:
				errs = append(errs, fmt.Errorf("signing key %d: the secret has %d bytes, want at least %d (openssl rand -base64 32)", n, len(b), MinSecretBytes))
			case seen[id]:
				errs = append(errs, fmt.Errorf("signing key %d: its id is the id of an earlier key", n))
			default:
				seen[id] = true
				keys = append(keys, Key{ID: id, Secret: b})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return keys, nil
}

func decodeSecret(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// EncodeKeys writes keys the way ParseKeys reads them, comma-separated.
// The result holds the secrets: it is for a process's environment or a
// key file, never for a log.
func EncodeKeys(keys ...Key) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.ID + "=" + base64.StdEncoding.EncodeToString(k.Secret)
	}
	return strings.Join(parts, ",")
}

// truncate bounds an id (which may come from a producer) in messages.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
