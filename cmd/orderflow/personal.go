package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/streams/envelope"
)

// The variable of the master keys of personal data: environment only,
// never a flag (the value is the secrets, and flags show in ps).
const masterKeysVar = "ORDERFLOW_PII_MASTER_KEYS"

// personalConfig is the master keyring that wraps customers' data keys
// (README, "Personal data"; internal/pii/DESIGN.md). The keys are written
// like the events topic's signing keys, <id>=<base64>, but must be 32
// bytes (AES-256).
type personalConfig struct {
	keysEnv  string
	keysFile string
	keyID    string
	ring     *pii.Keyring // read by validate; nil: none configured
}

func (p *personalConfig) register(f *flags) {
	f.string(&p.keysFile, "pii-master-keys-file", "ORDERFLOW_PII_MASTER_KEYS_FILE", "",
		"file of the master keys that wrap customers' data keys, one <id>=<base64 32 bytes> per line (# comments); instead of $"+masterKeysVar)
	f.string(&p.keyID, "pii-master-key-id", "ORDERFLOW_PII_MASTER_KEY_ID", "",
		"id of the master key new data keys are wrapped with (default: the only key); every configured key unwraps")
	p.keysEnv = os.Getenv(masterKeysVar)
}

// validate reads the keyring; none is not an error (personal data is then
// refused, see keys).
func (p *personalConfig) validate(f *flags) {
	text, from := p.keysEnv, masterKeysVar
	switch {
	case p.keysEnv != "" && p.keysFile != "":
		f.check(true, "set %s or ORDERFLOW_PII_MASTER_KEYS_FILE, not both", masterKeysVar)
		return
	case p.keysFile != "":
		b, err := os.ReadFile(p.keysFile) // #nosec G304 -- the operator names the key file
		if err != nil {
			f.check(true, "ORDERFLOW_PII_MASTER_KEYS_FILE: %v", err)
			return
		}
		text, from = string(b), "ORDERFLOW_PII_MASTER_KEYS_FILE "+p.keysFile
	}
	keys, err := envelope.ParseKeys(text)
	if err != nil {
		for _, line := range strings.Split(strings.ReplaceAll(err.Error(), "signing key", "master key"), "\n") {
			f.check(true, "%s: %s", from, line)
		}
		return
	}
	if len(keys) == 0 {
		f.check(p.keyID != "", "ORDERFLOW_PII_MASTER_KEY_ID is set but no master key is configured")
		return
	}
	current := p.keyID
	if current == "" {
		f.check(len(keys) > 1, "%d master keys: ORDERFLOW_PII_MASTER_KEY_ID must say which one wraps new data keys", len(keys))
		current = keys[0].ID
	}
	byID := make(map[string][]byte, len(keys))
	for _, k := range keys {
		byID[k.ID] = k.Secret
	}
	if p.ring, err = pii.NewKeyring(byID, current); err != nil {
		f.check(true, "%s: %v", from, err)
	}
}

// keys returns the data keys on db, or nil without a keyring (the command
// API then refuses personal data, and readers show it sealed).
func (p *personalConfig) keys(db pii.DB) *pii.Keys {
	if p.ring == nil {
		return nil
	}
	return pii.NewKeys(db, p.ring)
}

// logSetup says at start how personal data is kept (key ids, never keys).
func (p *personalConfig) logSetup(log *slog.Logger) {
	if p.ring == nil {
		log.Warn("personal data: no master key configured (" + masterKeysVar + "); commands carrying an email or a shipping address are refused")
		return
	}
	log.Info("personal data is sealed per customer", "master_key", p.ring.Current(), "master_keys", strings.Join(p.ring.IDs(), ","))
}

func runPII(ctx context.Context, args []string) error {
	return dispatch(ctx, "pii", "Usage: orderflow pii rewrap [flags]", args, map[string]func(context.Context, []string) error{
		"rewrap": runRewrap,
	})
}

// runRewrap is `orderflow pii rewrap`: re-wrap every data key with the
// current master key (README, "Rotating the master key").
func runRewrap(ctx context.Context, args []string) error {
	var (
		c common
		p personalConfig
	)
	f := newFlags("pii rewrap", "Re-wraps every customer data key with the current master key (ORDERFLOW_PII_MASTER_KEY_ID), as the schema owner ($DATABASE_URL), while serving goes on; then the old master key can be removed.")
	c.register(f)
	p.register(f)
	if err := f.parse(args, func() {
		c.validate(f, true)
		p.validate(f)
		f.check(p.ring == nil, "no master keys: set %s or ORDERFLOW_PII_MASTER_KEYS_FILE", masterKeysVar)
	}); err != nil {
		return err
	}
	// Updating keys is the schema owner's: no serving role may.
	pool, err := pg.ConnectOwner(ctx, c.databaseURL, pg.Options{MaxConns: 2, ApplicationName: "orderflow pii rewrap"})
	if err != nil {
		return err
	}
	defer pool.Close()
	n, err := pii.NewKeys(pool, p.ring).Rewrap(ctx, p.ring.Current())
	if err != nil {
		return err
	}
	fmt.Printf("re-wrapped %d data keys with master key %s\n", n, p.ring.Current())
	return nil
}
