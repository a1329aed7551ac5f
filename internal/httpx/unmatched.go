package httpx

import (
	"net/http"
	"strings"
)

// HandleUnmatched registers mux's catch-all ("/"): what no route serves is
// answered with problem+json instead of the standard library's plain text —
// 405 with Allow for a known path and another method, 404 otherwise. Only
// unmatched requests pay for the extra lookups; matched ones are routed
// once, as before.
func HandleUnmatched(mux *http.ServeMux) {
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			WriteProblem(w, r, NewProblem(http.StatusNotFound, "not-found", "Not found", "no resource at this path"))
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteProblem(w, r, NewProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
			r.Method+" is not served here; Allow lists the methods that are"))
	})
}
