// Package openapi embeds the OpenAPI document of everything the server
// serves and serves it at GET /v1/openapi.yaml. The document is the API's
// contract: openapitest validates every exchange of the handler tests
// against it, and a test checks that it lists exactly the routes the server
// registers.
package openapi

import (
	_ "embed"
	"net/http"
)

//go:embed openapi.yaml
var spec []byte

// Spec returns the OpenAPI 3.1 document (YAML). The slice is shared: do not
// modify it.
func Spec() []byte { return spec }

// Handler serves the document as application/yaml.
func Handler() http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(spec)
	}
}
