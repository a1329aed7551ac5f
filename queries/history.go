package queries

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/oklog/ulid/v2"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/httpx"
)

// HistoryEvent is an event as the history shows it: the public envelope with
// the data upcast to the current schema (schema_version is the current one)
// and stored_schema_version saying which schema the stored row has. The
// stored form, byte for byte, is GET /v1/orders/{id}/events (events.go).
//
// History shows upcast data because its readers want one shape per event
// type, whatever year an event was written in; the stored version stays
// visible so that a surprising value can be traced to an upcast step.
type HistoryEvent struct {
	eventstore.Envelope
	StoredSchemaVersion int `json:"stored_schema_version"`
}

const maxHistory = 1000

// history serves GET /v1/orders/{id}/history[?from_version&limit]. Events
// are decoded with the registry (which upcasts and checks them strictly)
// and encoded again, so data is exactly the current schema's canonical JSON.
// An event this code cannot decode is a server error, as it is for the
// projector: it means a newer deployment wrote it, and guessing its shape
// could show wrong facts.
func (a *API) history(w http.ResponseWriter, r *http.Request) error {
	tok, tokErr := parseToken(r)
	id, evs, next, err := a.page(r, tokErr)
	if err != nil {
		return err
	}
	if tok != nil {
		w.Header().Set("Consistency", fresh) // read from the store: see getOrder
	}
	out := struct {
		OrderID         string         `json:"order_id"`
		Events          []HistoryEvent `json:"events"`
		NextFromVersion int64          `json:"next_from_version,omitempty"`
	}{OrderID: id.String(), Events: make([]HistoryEvent, 0, len(evs)), NextFromVersion: next}
	for _, e := range evs {
		h, err := a.upcastEvent(r.Context(), e)
		if err != nil {
			return err
		}
		out.Events = append(out.Events, h)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// page reads one page of the order {id}'s stream, ?from_version (default 1)
// and ?limit (default and most maxHistory), for history and events: the
// events and the version the next page starts at (0: none). A parameter
// error is reported before other, an unknown order is a 404,
// and a database error is returned as it is (503 or 500, never a 404).
func (a *API) page(r *http.Request, other error) (ulid.ULID, []eventstore.RecordedEvent, int64, error) {
	id, err := pathOrderID(r)
	if err != nil {
		return id, nil, 0, err
	}
	q := parseQuery(r, "from_version", "limit")
	from, limit := int64(1), int64(maxHistory)
	if n := q.int64("from_version", 1, 1<<62); n != nil {
		from = *n
	}
	if n := q.int64("limit", 1, maxHistory); n != nil {
		limit = *n
	}
	if err := cmp.Or(q.err(), other); err != nil {
		return id, nil, 0, err
	}
	// One more than asked says whether there is a next page.
	evs, err := a.store.ReadStream(r.Context(), orderStream(id), from, int(limit)+1)
	if err != nil {
		return id, nil, 0, err
	}
	if len(evs) == 0 {
		v, err := a.store.StreamVersion(r.Context(), orderStream(id))
		if err != nil {
			return id, nil, 0, err
		}
		if v == 0 {
			return id, nil, 0, orderNotFound()
		}
	}
	var next int64
	if int64(len(evs)) > limit {
		evs = evs[:limit]
		next = evs[limit-1].Version + 1
	}
	return id, evs, next, nil
}

func (a *API) upcastEvent(ctx context.Context, e eventstore.RecordedEvent) (HistoryEvent, error) {
	schema, data, err := a.registry.Current(e.Type, e.SchemaVersion, e.Data)
	if err == nil && a.opts.Keys != nil {
		data, err = a.opts.Keys.OpenJSON(ctx, e.StreamID, data)
	}
	if err != nil {
		return HistoryEvent{}, fmt.Errorf("history %s version %d: %w", e.StreamID, e.Version, err)
	}
	h := HistoryEvent{Envelope: e.ToEnvelope(), StoredSchemaVersion: e.SchemaVersion}
	h.SchemaVersion, h.Data = schema, json.RawMessage(data)
	return h, nil
}
