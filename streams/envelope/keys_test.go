package envelope_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/streams/envelope"
)

func TestParseKeysReadsEnvironmentAndFileForms(t *testing.T) {
	a, b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 48)
	enc := base64.StdEncoding.EncodeToString
	for name, in := range map[string]string{
		"comma-separated":                   "k1=" + enc(a) + ",k2=" + enc(b),
		"one per line, comments and blanks": "# rotated 2026-12\nk1=" + enc(a) + "\n\n  k2=" + enc(b) + "  \n",
		"unpadded base64":                   "k1=" + base64.RawStdEncoding.EncodeToString(a) + ",k2=" + enc(b),
		"EncodeKeys' output":                envelope.EncodeKeys(envelope.Key{ID: "k1", Secret: a}, envelope.Key{ID: "k2", Secret: b}),
	} {
		t.Run(name, func(t *testing.T) {
			keys, err := envelope.ParseKeys(in)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 2 || keys[0].ID != "k1" || !bytes.Equal(keys[0].Secret, a) || keys[1].ID != "k2" || !bytes.Equal(keys[1].Secret, b) {
				t.Fatalf("got %v", keys)
			}
		})
	}
}

func TestParseKeysRefusesBadKeysWithoutShowingASecret(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("s3cr3t"), 6))
	short := base64.StdEncoding.EncodeToString([]byte("hunter2hunter2"))
	for name, in := range map[string]string{
		"a bare secret":          secret,
		"a bare padded secret":   short,
		"a secret not in base64": "k1=" + secret + "!!",
		"a secret too short":     "k1=" + short,
		"an id with a colon":     "k:1=" + secret,
		"an id twice":            "k1=" + secret + ",k1=" + secret,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := envelope.ParseKeys(in)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, s := range []string{secret, short, strings.TrimRight(short, "="), "s3cr3t", "hunter2"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("the error shows the secret: %v", err)
				}
			}
		})
	}
}

func TestAKeyNeverPrintsItsSecret(t *testing.T) {
	k, err := envelope.GenerateKey("dev")
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("key", "key", k, "keys", []envelope.Key{k})
	out := fmt.Sprintf("%v %+v %#v %s", k, k, k, []envelope.Key{k}) + logged.String()
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding} {
		if strings.Contains(out, enc.EncodeToString(k.Secret)) {
			t.Fatalf("the secret is printed: %s", out)
		}
	}
	if !strings.Contains(out, "dev=<redacted>") {
		t.Fatalf("the id is not printed: %s", out)
	}
}
