package httpapi

import (
	"cmp"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/problem"
	"github.com/orderflow/orderflow/internal/tracing"
)

// API is the HTTP command API under /v1.
type API struct {
	svc *commands.Service
	log *slog.Logger
}

// NewAPI returns the command API over a service; log (nil: none) gets the
// errors that are the server's.
func NewAPI(svc *commands.Service, log *slog.Logger) *API { return &API{svc: svc, log: log} }

// Mux is what Register needs of a router; *http.ServeMux is one, and a
// test can record the patterns to compare them with the OpenAPI document.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register adds the command routes to mux.
func (a *API) Register(mux Mux) {
	mux.HandleFunc("POST /v1/orders", a.handle(fromBody[commands.CreateOrder]))
	mux.HandleFunc("POST /v1/orders/{id}/items", a.handle(fromBody[commands.AddItem]))
	mux.HandleFunc("DELETE /v1/orders/{id}/items/{sku}", a.handle(removeItem))
	mux.HandleFunc("POST /v1/orders/{id}/place", a.handle(fromBody[commands.PlaceOrder]))
	mux.HandleFunc("POST /v1/orders/{id}/payments", a.handle(fromBody[commands.RecordPayment]))
	mux.HandleFunc("POST /v1/orders/{id}/ship", a.handle(fromBody[commands.ShipOrder]))
	mux.HandleFunc("POST /v1/orders/{id}/deliver", a.handle(fromBody[commands.DeliverOrder]))
	mux.HandleFunc("POST /v1/orders/{id}/cancel", a.handle(fromBody[commands.CancelOrder]))
	mux.HandleFunc("POST /v1/orders/{id}/shipping-address", a.handle(fromBody[commands.ChangeShippingAddress]))
	mux.HandleFunc("DELETE /v1/customers/{id}/personal-data", a.erase)
}

// parser turns a request into its command.
type parser func(body []byte, r *http.Request) (commands.Command, *httpx.Problem)

// fromBody strictly decodes the JSON body into a C.
func fromBody[C commands.Command](body []byte, _ *http.Request) (commands.Command, *httpx.Problem) {
	var c C
	if p := httpx.Decode(body, &c); p != nil {
		return nil, p
	}
	return c, nil
}

// removeItem takes its argument from the path and accepts no body.
func removeItem(body []byte, r *http.Request) (commands.Command, *httpx.Problem) {
	if string(body) != "{}" {
		return nil, httpx.NewProblem(http.StatusBadRequest, "malformed-json", "Unexpected request body",
			"this endpoint takes its arguments from the path; send no body")
	}
	return commands.RemoveItem{SKU: r.PathValue("sku")}, nil
}

// handle runs the pipeline every command endpoint shares: read the body,
// parse the command, the order id and the preconditions, execute, and
// answer with the outcome or a problem. Nothing is written before execute.
func (a *API) handle(parse parser) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, p := httpx.ReadBody(w, r)
		if p != nil {
			httpx.WriteProblem(w, r, p)
			return
		}
		cmd, p := parse(body, r)
		if p != nil {
			httpx.WriteProblem(w, r, p)
			return
		}
		req := commands.Request{Command: cmd, Metadata: metadataFrom(r)}
		if c, ok := cmd.(commands.CreateOrder); ok {
			// Order ids are minted here: their time prefix picks the
			// current month's partition.
			req.OrderID = ulid.Make()
			c.OrderID = req.OrderID
			req.Command = c
		} else {
			var err error
			if req.OrderID, err = ulid.ParseStrict(r.PathValue("id")); err != nil {
				httpx.WriteProblem(w, r, httpx.InvalidOrderID(r.PathValue("id")))
				return
			}
		}
		if req.IfMatch, p = parseIfMatch(r.Header.Get("If-Match")); p != nil {
			httpx.WriteProblem(w, r, p)
			return
		}
		if key := r.Header.Get("Idempotency-Key"); key != "" {
			if p := checkIdempotencyKey(key); p != nil {
				httpx.WriteProblem(w, r, p)
				return
			}
			req.IdempotencyKey = key
			req.Scope = keyScope(r, req)
			req.Fingerprint = fingerprint(r, body)
		}

		out, err := a.svc.Execute(r.Context(), req)
		if err != nil {
			problem.Write(w, r, a.log, err)
			return
		}
		writeOutcome(w, out)
	}
}

// fingerprint identifies a request under its Idempotency-Key: sha256 of
// "METHOD /path\n" and the body.
func fingerprint(r *http.Request, body []byte) []byte {
	var stack [1024]byte // most requests fit: then nothing but the sum is allocated
	buf := append(append(append(append(stack[:0], r.Method...), ' '), r.URL.Path...), '\n')
	sum := sha256.Sum256(append(buf, body...))
	return sum[:]
}

func writeOutcome(w http.ResponseWriter, out commands.Outcome) {
	// Keys in canonical form, set directly: Set would canonicalize "ETag"
	// into a new string on every response.
	h := w.Header()
	h["Etag"] = []string{`"` + strconv.FormatInt(out.Version, 10) + `"`}
	h["Consistency-Token"] = []string{ConsistencyToken(out)}
	status := http.StatusOK
	if out.Kind == commands.Created {
		status = http.StatusCreated
		h["Location"] = []string{"/v1/orders/" + out.OrderID}
	}
	if out.Replayed {
		h["Idempotent-Replayed"] = []string{"true"}
	}
	httpx.WriteJSON(w, status, struct {
		OrderID  string `json:"order_id"`
		Version  int64  `json:"version"`
		Position int64  `json:"position"`
	}{out.OrderID, out.Version, out.Position})
}

// ConsistencyToken is the read-your-writes token of an outcome: the order,
// the stream version and the global position of what the command appended.
func ConsistencyToken(out commands.Outcome) string {
	return out.OrderID + ":" + strconv.FormatInt(out.Version, 10) + ":" + strconv.FormatInt(out.Position, 10)
}

// parseIfMatch accepts a strong entity tag holding a version: "7".
func parseIfMatch(v string) (*int64, *httpx.Problem) {
	if v == "" {
		return nil, nil
	}
	bad := httpx.NewProblem(http.StatusBadRequest, "invalid-if-match", "Invalid If-Match",
		`If-Match must be the ETag of the order, a quoted version such as "7"`)
	if !strings.HasPrefix(v, `"`) || !strings.HasSuffix(v, `"`) || len(v) < 3 {
		return nil, bad
	}
	n, err := strconv.ParseInt(v[1:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return nil, bad
	}
	return &n, nil
}

func checkIdempotencyKey(k string) *httpx.Problem {
	ok := len(k) <= 255
	for _, c := range k {
		if c < 0x21 || c > 0x7e {
			ok = false
		}
	}
	if ok {
		return nil
	}
	return httpx.NewProblem(http.StatusBadRequest, "invalid-idempotency-key", "Invalid Idempotency-Key",
		"Idempotency-Key must be 1 to 255 printable ASCII characters without spaces")
}

// keyScope is whose Idempotency-Key a request's is: the authenticated
// subject ("sub:<principal>") once authentication has recorded one
// (httpx.WithActor, the hook the rate limits' client key uses too). Until
// then, the order the request acts on (/v1/orders/{id}), or the orders
// collection (/v1/orders) for a creation: a key meets only requests on the
// same order, which only those who know its id can send, and creations share
// one scope.
func keyScope(r *http.Request, req commands.Request) string {
	if p, ok := httpx.Principal(r.Context()); ok {
		return "sub:" + p
	}
	if _, ok := req.Command.(commands.CreateOrder); ok {
		return "/v1/orders"
	}
	return "/v1/orders/" + req.OrderID.String()
}

// metadataFrom carries the request's identifiers and trace context
// (httpx.Trace) into every event it causes.
func metadataFrom(r *http.Request) eventstore.Metadata {
	rid := httpx.RequestID(r.Context())
	// The middleware's, checked (httpx.ValidID): never the raw header,
	// which would go into append-only metadata unchecked.
	corr := cmp.Or(httpx.CorrelationID(r.Context()), rid)
	tp, ts := tracing.Header(r.Context())
	return eventstore.Metadata{CorrelationID: corr, CausationID: rid, RequestID: rid, Actor: httpx.Actor(r.Context()),
		TraceParent: tp, TraceState: ts}
}
