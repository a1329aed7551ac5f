package httpx

import (
	"net/http"
)

// Unmatched answers what mux has no route for with problem+json instead of
// the standard library's plain text: 404 for an unknown path, 405 (with
// Allow) for a known path and another method. Matched requests, and the
// mux's own redirects, pass through untouched.
func Unmatched(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// The mux's fallback handler tells what it would have answered.
		probe := &probeWriter{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", probe.header.Get("Allow"))
			WriteProblem(w, r, NewProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
				r.Method+" is not served here; Allow lists the methods that are"))
		case http.StatusNotFound:
			WriteProblem(w, r, NewProblem(http.StatusNotFound, "not-found", "Not found", "no resource at this path"))
		default:
			for k, v := range probe.header {
				w.Header()[k] = v
			}
			w.WriteHeader(probe.status)
		}
	})
}

// probeWriter records a fallback handler's status and headers, and drops its
// plain-text body.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }

func (p *probeWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}

func (p *probeWriter) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}
