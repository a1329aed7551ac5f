// Package httpx holds the HTTP plumbing every orderflow API shares: RFC 9457
// problem details, strict JSON request decoding and JSON responses, and the
// middleware: request and correlation ids (requestid.go), metrics with
// bounded labels, per-client rate limits by route class (ratelimit.go, keyed
// by clientkey.go: the hook authentication uses to make them per subject),
// security headers, CORS and cross-origin protection (security.go); and the
// drain before a server's Shutdown that answers the requests sent but not
// yet read (drain.go).
package httpx

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ProblemTypeBase prefixes every problem type URI. The types are stable
// identifiers documented in the OpenAPI document; clients branch on them.
const ProblemTypeBase = "https://orderflow.dev/problems/"

// FieldError points at one bad field with a JSON path ("items[2].quantity")
// or, for query parameters, the parameter name.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	// Extensions used by some types.
	Rule           string `json:"rule,omitempty"`            // the domain rule violated (409)
	CurrentVersion *int64 `json:"current_version,omitempty"` // stale If-Match (412), conflicts (409)
	// RetryAfter, when positive, is sent as the Retry-After header (whole
	// seconds): set on 503s.
	RetryAfter int `json:"-"`
}

// NewProblem builds a problem of a stable type slug, e.g. "validation".
func NewProblem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: ProblemTypeBase + slug, Title: title, Status: status, Detail: detail}
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// RetryAfterUnavailable is the Retry-After of every 503 the APIs answer: a
// database restart or failover takes seconds, and clients retry with
// backoff on top.
const RetryAfterUnavailable = 2

// Unavailable is the 503 problem of a request that could not be completed
// now and may be retried (with the same Idempotency-Key, for a command):
// type "unavailable", with Retry-After. detail says why, without internals.
func Unavailable(title, detail string) *Problem {
	p := NewProblem(http.StatusServiceUnavailable, "unavailable", title, detail)
	p.RetryAfter = RetryAfterUnavailable
	return p
}

// InvalidOrderID is the problem of a path {id} that is not a ULID; the
// command and query APIs answer it alike.
func InvalidOrderID(id string) *Problem {
	p := NewProblem(http.StatusBadRequest, "invalid-order-id", "Invalid order id", "order ids are ULIDs (26 characters of Crockford base32)")
	if len(id) > 40 {
		id = id[:40] + "…"
	}
	p.Errors = []FieldError{{Field: "id", Message: "not a ULID: " + strconv.Quote(id)}}
	return p
}

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteJSON writes v as application/json with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// OrderNotFound is the problem of an order that does not exist. The command
// and query APIs answer it, and so does authorization for another
// customer's order, which must look exactly like one that does not exist.
func OrderNotFound() *Problem {
	return NewProblem(http.StatusNotFound, "order-not-found", "Order not found", "no order has this id")
}
