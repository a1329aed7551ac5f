package httpapi

import (
	"net/http"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/problem"
)

// erase serves DELETE /v1/customers/{id}/personal-data (admin): forget the
// customer's personal data (Service.ErasePersonalData). Repeating it is
// harmless: the key is gone, the orders already marked are not marked
// again.
func (a *API) erase(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if msg := commands.CustomerIDProblem(id); msg != "" {
		p := httpx.NewProblem(http.StatusBadRequest, "invalid-customer-id", "Invalid customer id", "the customer id "+msg)
		p.Errors = []httpx.FieldError{{Field: "id", Message: msg}}
		httpx.WriteProblem(w, r, p)
		return
	}
	if body, p := httpx.ReadBody(w, r); p != nil || string(body) != "{}" {
		if p == nil {
			p = httpx.NewProblem(http.StatusBadRequest, "malformed-json", "Unexpected request body", "this endpoint takes its argument from the path; send no body")
		}
		httpx.WriteProblem(w, r, p)
		return
	}
	out, err := a.svc.ErasePersonalData(r.Context(), id, commands.Request{Metadata: metadataFrom(r)})
	if err != nil {
		problem.Write(w, r, a.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
