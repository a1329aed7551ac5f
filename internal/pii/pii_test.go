package pii_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/order"
)

func masterKey(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func keyring(t *testing.T, current string, keys map[string][]byte) *pii.Keyring {
	t.Helper()
	k, err := pii.NewKeyring(keys, current)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sealFor(t *testing.T, keys *pii.Keys, customer string, stream ulid.ULID, field, text string) string {
	t.Helper()
	dk, err := keys.ForCustomer(context.Background(), customer)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dk.Seal(stream, field, text)
	if err != nil {
		t.Fatal(err)
	}
	if !pii.IsSealed(s) || strings.Contains(s, text) {
		t.Fatalf("sealed %q as %q", text, s)
	}
	return s
}

func TestSealedValuesOpenOnlyWhereTheyWereSealedAndNotAfterErasure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	ring := keyring(t, "m1", map[string][]byte{"m1": masterKey(t)})
	writer, reader := pii.NewKeys(db.Command, ring), pii.NewKeys(db.Query, ring)
	o1, o2 := ulid.Make(), ulid.Make()
	email := sealFor(t, writer, "cust-1", o1, "email", "ada@example.com")
	other := sealFor(t, writer, "cust-2", o2, "email", "bob@example.com")

	got := email
	if err := reader.Open(ctx, pii.Value{Stream: o1, Field: "email", Text: &got}); err != nil || got != "ada@example.com" {
		t.Fatalf("open = %q, %v", got, err)
	}
	for name, v := range map[string]pii.Value{
		"in another order": {Stream: o2, Field: "email", Text: new(string)},
		"in another field": {Stream: o1, Field: "shipping_address", Text: new(string)},
	} {
		*v.Text = email
		if err := reader.Open(ctx, v); err == nil {
			t.Errorf("a sealed email opened %s: %q", name, *v.Text)
		}
	}

	data := json.RawMessage(`{"order_id":"` + o1.String() + `","email":"` + email + `","currency":"EUR"}`)
	opened, err := reader.OpenJSON(ctx, o1, data)
	if err != nil || string(opened) != `{"order_id":"`+o1.String()+`","email":"ada@example.com","currency":"EUR"}` {
		t.Fatalf("OpenJSON = %s, %v", opened, err)
	}

	if erased, err := writer.Erase(ctx, "cust-1", noRecord); err != nil || !erased {
		t.Fatalf("erase = %v, %v", erased, err)
	}
	got, kept := email, other
	if err := reader.Open(ctx, pii.Value{Stream: o1, Field: "email", Text: &got}, pii.Value{Stream: o2, Field: "email", Text: &kept}); err != nil {
		t.Fatal(err)
	}
	if got != order.Erased || kept != "bob@example.com" {
		t.Fatalf("after erasing cust-1: %q and %q", got, kept)
	}
	if erased, err := writer.Erase(ctx, "cust-1", noRecord); err != nil || erased {
		t.Fatalf("a second erasure = %v, %v", erased, err)
	}
	again := sealFor(t, writer, "cust-1", o1, "email", "ada@example.com")
	got = email
	if err := reader.Open(ctx, pii.Value{Stream: o1, Field: "email", Text: &got}); err != nil || got != order.Erased || again[:33] == email[:33] {
		t.Fatalf("a new key of an erased customer opened the old value: %q, %v", got, err)
	}
}

func TestRewrapMovesEveryKeyToTheNewMasterKeyAndTheOldOneCanGo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	old, next := masterKey(t), masterKey(t)
	before := keyring(t, "m1", map[string][]byte{"m1": old})
	stream := ulid.Make()
	sealed := make([]string, 3)
	for i := range sealed {
		sealed[i] = sealFor(t, pii.NewKeys(db.Command, before), "cust-"+string(rune('a'+i)), stream, "email", "someone@example.com")
	}

	during := keyring(t, "m2", map[string][]byte{"m1": old, "m2": next})
	n, err := pii.NewKeys(db.Owner, during).Rewrap(ctx, "m2")
	if err != nil || n != len(sealed) {
		t.Fatalf("rewrap = %d, %v; want %d", n, err, len(sealed))
	}
	if n, err := pii.NewKeys(db.Owner, during).Rewrap(ctx, "m2"); err != nil || n != 0 {
		t.Fatalf("a second rewrap = %d, %v", n, err)
	}

	after := pii.NewKeys(db.Query, keyring(t, "m2", map[string][]byte{"m2": next}))
	for _, s := range sealed {
		got := s
		if err := after.Open(ctx, pii.Value{Stream: stream, Field: "email", Text: &got}); err != nil || got != "someone@example.com" {
			t.Fatalf("after the old master key went: %q, %v", got, err)
		}
	}
	got := sealed[0]
	if err := pii.NewKeys(db.Query, before).Open(ctx, pii.Value{Stream: stream, Field: "email", Text: &got}); err == nil {
		t.Fatal("a process with only the old master key still opened a re-wrapped key")
	}
}

func noRecord(context.Context, pgx.Tx, bool) error { return nil }
