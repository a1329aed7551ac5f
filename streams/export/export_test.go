package export_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/export"
)

func TestExportUpcastsAndFilters(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	id := ulid.Make()
	stream := eventstore.Stream{ID: id, Type: "order"}
	created := `{"order_id":"` + id.String() + `","customer_id":"c","currency":"EUR","created_at":"2026-01-01T00:00:00Z"}`
	// An ItemAdded as the first schema wrote it: price_minor, not unit_price_minor.
	v1 := `{"sku":"A","name":"a","quantity":2,"price_minor":150}`
	if _, err := e.Store.Append(ctx, stream, eventstore.NoStream(), []eventstore.EventData{
		{ID: ulid.Make(), Type: "OrderCreated", SchemaVersion: 1, Data: []byte(created)},
		{ID: ulid.Make(), Type: "ItemAdded", SchemaVersion: 1, Data: []byte(v1)},
	}); err != nil {
		t.Fatal(err)
	}
	// A type this code does not know (a newer deployment wrote it) is
	// exported as stored: showing a fact it cannot interpret is still true.
	future := `{"anything":[1,2]}`
	if _, err := e.Store.Append(ctx, stream, eventstore.Exact(2), []eventstore.EventData{
		{ID: ulid.Make(), Type: "FromTheFuture", SchemaVersion: 7, Data: []byte(future)},
	}); err != nil {
		t.Fatal(err)
	}
	other := eventstore.Stream{ID: ulid.Make(), Type: "order"}
	if _, err := e.Store.Append(ctx, other, eventstore.NoStream(), []eventstore.EventData{
		{ID: ulid.Make(), Type: "OrderCreated", SchemaVersion: 1, Data: []byte(`{"order_id":"` + other.ID.String() + `","customer_id":"d","currency":"EUR","created_at":"2026-01-01T00:00:00Z"}`)},
	}); err != nil {
		t.Fatal(err)
	}

	run := func(f eventstore.Filter, format string) []byte {
		var buf bytes.Buffer
		if _, err := export.Export(ctx, e.Store, e.Registry, nil, f, format, &buf, nil); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	lines := func(b []byte) []eventstore.Envelope {
		var out []eventstore.Envelope
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var env eventstore.Envelope
			if err := json.Unmarshal(sc.Bytes(), &env); err != nil {
				t.Fatal(err)
			}
			out = append(out, env)
		}
		return out
	}

	all := lines(run(eventstore.Filter{}, export.FormatNDJSON))
	if len(all) != 4 || all[0].Position >= all[1].Position || all[1].Position >= all[2].Position || all[2].Position >= all[3].Position {
		t.Fatalf("want 4 events in position order, got %+v", all)
	}
	if all[2].Type != "FromTheFuture" || all[2].SchemaVersion != 7 || string(all[2].Data) != future {
		t.Fatalf("an unknown type was not exported as stored: %+v", all[2])
	}
	var item struct {
		UnitPriceMinor int64 `json:"unit_price_minor"`
	}
	if err := json.Unmarshal(all[1].Data, &item); err != nil || item.UnitPriceMinor != 150 || all[1].SchemaVersion != 2 {
		t.Fatalf("ItemAdded v1 was not upcast to v2: schema %d, data %s", all[1].SchemaVersion, all[1].Data)
	}

	tests := []struct {
		name   string
		filter eventstore.Filter
		want   int
	}{
		{"a type filter keeps that type", eventstore.Filter{Types: []string{"OrderCreated"}}, 2},
		{"a stream filter keeps that stream", eventstore.Filter{Stream: &id}, 3},
		{"positions bound both ends", eventstore.Filter{AfterPosition: all[0].Position, UpToPosition: all[1].Position}, 1},
		{"a time window after everything is empty", eventstore.Filter{From: time.Now().Add(time.Hour)}, 0},
		{"a time window around everything keeps all", eventstore.Filter{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lines(run(tt.filter, export.FormatNDJSON)); len(got) != tt.want {
				t.Fatalf("%d events, want %d", len(got), tt.want)
			}
		})
	}

	t.Run("csv has a header and one row per event", func(t *testing.T) {
		rows, err := csv.NewReader(bytes.NewReader(run(eventstore.Filter{}, export.FormatCSV))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 5 || rows[0][0] != "position" || rows[2][5] != "ItemAdded" || rows[2][6] != "2" {
			t.Fatalf("csv rows: %v", rows)
		}
	})
}
