package queries

import (
	"net/http"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/httpx"
)

// events serves GET /v1/orders/{id}/events[?from_version&limit]: the stream
// in version order as stored, as public envelopes (history is the same page
// upcast to the current schemas).
func (a *API) events(w http.ResponseWriter, r *http.Request) error {
	id, evs, _, err := a.page(r, nil)
	if err != nil {
		return err
	}
	out := make([]eventstore.Envelope, len(evs))
	for i, e := range evs {
		if a.opts.Keys != nil {
			// Stored schema, personal data opened like every reader's.
			if e.Data, err = a.opts.Keys.OpenJSON(r.Context(), e.StreamID, e.Data); err != nil {
				return err
			}
		}
		out[i] = e.ToEnvelope()
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		OrderID string                `json:"order_id"`
		Events  []eventstore.Envelope `json:"events"`
	}{id.String(), out})
	return nil
}
