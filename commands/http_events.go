package commands

import (
	"net/http"
	"strconv"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/order"
)

// events serves GET /v1/orders/{id}/events: the stream in version order, as
// public envelopes. ?from_version and ?limit page through long streams.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	id, err := ulid.ParseStrict(r.PathValue("id"))
	if err != nil {
		httpx.WriteProblem(w, r, httpx.InvalidOrderID(r.PathValue("id")))
		return
	}
	from, limit := int64(1), 1000
	var bad []httpx.FieldError
	if v := r.URL.Query().Get("from_version"); v != "" {
		if from, err = strconv.ParseInt(v, 10, 64); err != nil || from < 1 {
			bad = append(bad, httpx.FieldError{Field: "from_version", Message: "must be an integer ≥ 1"})
		}
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			bad = append(bad, httpx.FieldError{Field: "limit", Message: "must be an integer from 1 to 1000"})
		}
	}
	if len(bad) > 0 {
		p := httpx.NewProblem(http.StatusBadRequest, "invalid-parameter", "Invalid query parameter", "see errors")
		p.Errors = bad
		httpx.WriteProblem(w, r, p)
		return
	}
	stream := eventstore.Stream{ID: id, Type: order.StreamType}
	evs, err := a.svc.store.ReadStream(r.Context(), stream, from, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if len(evs) == 0 {
		if v, err := a.svc.store.StreamVersion(r.Context(), stream); err != nil || v == 0 {
			writeError(w, r, ErrOrderNotFound)
			return
		}
	}
	out := make([]eventstore.Envelope, len(evs))
	for i, e := range evs {
		if a.svc.Keys != nil {
			// Stored schema, personal data opened like every reader's.
			if e.Data, err = a.svc.Keys.OpenJSON(r.Context(), e.StreamID, e.Data); err != nil {
				writeError(w, r, err)
				return
			}
		}
		out[i] = e.ToEnvelope()
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		OrderID string                `json:"order_id"`
		Events  []eventstore.Envelope `json:"events"`
	}{id.String(), out})
}
