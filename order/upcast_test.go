package order

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestUpcastItemAddedFromV1(t *testing.T) {
	r := NewRegistry()
	tests := []struct {
		name    string
		version int
		data    string
		want    string
		wantErr error
	}{
		{name: "v1 price_minor becomes unit_price_minor", version: 1,
			data: `{"sku":"a","name":"A","quantity":1,"price_minor":250}`,
			want: `{"name":"A","quantity":1,"sku":"a","unit_price_minor":250}`},
		{name: "current data passes through unchanged", version: 2,
			data: `{"sku":"a","name":"A","quantity":1,"unit_price_minor":250}`,
			want: `{"sku":"a","name":"A","quantity":1,"unit_price_minor":250}`},
		{name: "v1 without price_minor is refused", version: 1,
			data: `{"sku":"a","name":"A","quantity":1}`, wantErr: ErrInvalidEventData},
		{name: "v1 with both price fields is refused as ambiguous", version: 1,
			data: `{"sku":"a","price_minor":1,"unit_price_minor":2}`, wantErr: ErrInvalidEventData},
		{name: "v1 that is not an object is refused", version: 1, data: `[1]`, wantErr: ErrInvalidEventData},
		{name: "a version above the current is refused", version: 3, data: `{}`, wantErr: ErrSchemaVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, v, err := r.Upcast(NameItemAdded, tt.version, json.RawMessage(tt.data))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || v != 2 || string(got) != tt.want {
				t.Fatalf("Upcast = %s v%d, %v; want %s v2", got, v, err, tt.want)
			}
		})
	}
}

// TestUpcastChainsStepsInOrder registers a made-up three-step history to
// prove the chain runs v1→v2→v3→v4 in order, each step seeing the previous
// step's output.
func TestUpcastChainsStepsInOrder(t *testing.T) {
	r := &Registry{codecs: map[string]codec{}, upcasts: map[upcastKey]UpcastFunc{}}
	register[ItemRemoved](r, 4)
	appendStep := func(s string) UpcastFunc {
		return func(d json.RawMessage) (json.RawMessage, error) { return append(d[:len(d):len(d)], s...), nil }
	}
	r.addUpcast(NameItemRemoved, 1, appendStep("2"))
	r.addUpcast(NameItemRemoved, 2, appendStep("3"))
	r.addUpcast(NameItemRemoved, 3, appendStep("4"))

	got, v, err := r.Upcast(NameItemRemoved, 1, json.RawMessage("1"))
	if err != nil || v != 4 || string(got) != "1234" {
		t.Fatalf("from v1: %s v%d, %v; want 1234 v4", got, v, err)
	}
	got, v, err = r.Upcast(NameItemRemoved, 3, json.RawMessage("3"))
	if err != nil || v != 4 || string(got) != "34" {
		t.Fatalf("from v3: %s v%d, %v; want 34 v4", got, v, err)
	}
}

func TestUpcastReportsAMissingStepAndAFailingStep(t *testing.T) {
	r := &Registry{codecs: map[string]codec{}, upcasts: map[upcastKey]UpcastFunc{}}
	register[ItemRemoved](r, 3)
	boom := errors.New("boom")
	r.addUpcast(NameItemRemoved, 2, func(json.RawMessage) (json.RawMessage, error) { return nil, boom })
	if _, _, err := r.Upcast(NameItemRemoved, 1, json.RawMessage(`{}`)); !errors.Is(err, ErrSchemaVersion) {
		t.Fatalf("missing step: err = %v, want ErrSchemaVersion", err)
	}
	if _, _, err := r.Upcast(NameItemRemoved, 2, json.RawMessage(`{}`)); !errors.Is(err, boom) {
		t.Fatalf("failing step: err = %v, want boom", err)
	}
}

func TestRegistrationsAreUnique(t *testing.T) {
	for name, f := range map[string]func(r *Registry){
		"an event type registered twice":  func(r *Registry) { register[ItemAdded](r, 2) },
		"an upcast step registered twice": func(r *Registry) { r.addUpcast(NameItemAdded, 1, upcastItemAddedV1) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f(NewRegistry())
		})
	}
}
