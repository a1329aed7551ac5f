package openapi_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/commands/httpapi"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/openapi"
	"github.com/orderflow/orderflow/openapi/openapitest"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/queries"
)

func TestSpecLoadsAndValidates(t *testing.T) {
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1", doc.OpenAPI)
	}
	if _, err := openapitest.New(); err != nil {
		t.Fatal(err)
	}
}

// routeRecorder records the patterns registered on it, since
// http.ServeMux does not list its own.
type routeRecorder struct{ patterns []string }

func (r *routeRecorder) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	r.patterns = append(r.patterns, pattern)
}

// servedRoutes registers what cmd/orderflow's serve registers on its mux:
// the health and document routes (listed here as serve lists them) and the
// command API's own routes (recorded from Register, so a new command route
// shows up without touching this test).
func servedRoutes(t *testing.T) []string {
	rec := &routeRecorder{}
	rec.HandleFunc("GET /healthz", nil)
	rec.HandleFunc("GET /readyz", nil)
	rec.HandleFunc("GET /v1/openapi.yaml", nil)
	rec.HandleFunc("GET /metrics", nil)
	rec.HandleFunc("GET /v1/projections", nil)
	rec.HandleFunc("GET /v1/stream", nil) // streams/hub: Hub.Register
	rec.HandleFunc("GET /", nil)          // web: the page (registered as "GET /{$}")
	svc, err := commands.NewService(commands.Config{Store: eventstore.New(nil), Registry: order.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	httpapi.NewAPI(svc, nil).Register(rec)
	qapi, err := queries.NewAPI(nil, nil, nil, queries.Options{})
	if err != nil {
		t.Fatal(err)
	}
	qapi.Register(rec)
	return rec.patterns
}

func TestEveryRouteIsDocumentedAndEveryDocumentedRouteServed(t *testing.T) {
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	served := servedRoutes(t)
	for _, p := range served {
		if !strings.Contains(p, " ") {
			t.Errorf("route %q has no method: every route is method-specific", p)
		}
	}
	slices.Sort(documented)
	slices.Sort(served)
	for _, p := range served {
		if !slices.Contains(documented, p) {
			t.Errorf("served but not documented: %s", p)
		}
	}
	for _, p := range documented {
		if !slices.Contains(served, p) {
			t.Errorf("documented but not served: %s", p)
		}
	}
	if len(served) != len(slices.Compact(slices.Clone(served))) {
		t.Errorf("a route is registered twice: %v", served)
	}
}

func TestHandlerServesTheDocumentAsYAML(t *testing.T) {
	srv := httptest.NewServer(openapi.Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/openapi.yaml", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body := readAll(t, resp)
	if got := resp.Header.Get("Content-Type"); got != "application/yaml" {
		t.Errorf("Content-Type = %q, want application/yaml", got)
	}
	if string(body) != string(openapi.Spec()) {
		t.Error("the served document differs from the embedded one")
	}
	// X-Request-ID is the middleware's; this server runs without it.
	resp.Header.Set("X-Request-ID", "test")
	if err := openapitest.ValidateExchange(t, req, nil, resp, body); err != nil {
		t.Errorf("request: %v", err)
	}
}
