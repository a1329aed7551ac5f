package httpx

import (
	"context"
	"net/http"
	"time"
)

// Registrar is how routes are mounted: an http.ServeMux, or one of the
// registrars that wrap it (LimitedMux, the access guard's, a breaker's).
type Registrar interface {
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// DeadlineMux returns a registrar that mounts handlers on reg with a
// deadline on each request's context, d after it arrived: the budget of
// everything the request waits for (a pool connection, a statement, a
// dependency that hangs instead of refusing). The handler then answers
// what its error mapping says of context.DeadlineExceeded (503, retry).
// The server's WriteTimeout must be longer, or the answer is lost.
func DeadlineMux(d time.Duration, reg Registrar) Registrar { return deadlineMux{d: d, reg: reg} }

type deadlineMux struct {
	d   time.Duration
	reg Registrar
}

func (m deadlineMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.reg.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), m.d)
		defer cancel()
		h(w, r.WithContext(ctx))
	})
}
