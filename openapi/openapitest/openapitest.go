// Package openapitest checks HTTP exchanges against the embedded OpenAPI
// document with kin-openapi, for tests.
//
// It lives apart from package openapi so that the server binary, which
// serves the document, does not link the validator or package testing.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/orderflow/orderflow/openapi"
)

// Load parses and validates the embedded document. kin-openapi (≥ v0.128)
// reads OpenAPI 3.1 and validates 3.1 documents' schemas with its JSON
// Schema 2020-12 validator, so the document uses 3.1 keywords (const,
// examples) freely.
func Load() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Spec())
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("validate openapi.yaml: %w", err)
	}
	return doc, nil
}

// Validator matches requests to the document's operations.
type Validator struct {
	router routers.Router
}

// New returns a validator of the embedded document.
func New() (*Validator, error) {
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	// The document names the default local server; tests run on random
	// ports, so route on paths alone.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &Validator{router: router}, nil
}

var shared = sync.OnceValues(New)

// ValidateExchange checks one request and its response against the
// document, with the shared validator. See Validator.ValidateExchange.
func ValidateExchange(t testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	t.Helper()
	v, err := shared()
	if err != nil {
		t.Fatalf("openapi: %v", err)
	}
	return v.ValidateExchange(t, req, reqBody, resp, respBody)
}

// ValidateExchange checks one exchange and fails t when:
//   - the request's method and path are not a documented operation;
//   - the response does not match the document: an undocumented status,
//     a missing or malformed documented header, a body that does not match
//     its schema or content type;
//   - the server answered 2xx to a request the document rejects (the
//     document is stricter than the server), or 400/415 to one it accepts
//     (the document is looser than the server's syntax checks).
//
// Tests deliberately send bad requests, so a request that does not conform
// is not itself a failure: its error is returned for the test to assert on
// (nil when the request conforms).
func (v *Validator) ValidateExchange(t testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	t.Helper()
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		t.Errorf("openapi: %s %s is not documented: %v", req.Method, req.URL.Path, err)
		return err
	}
	// The client consumed req.Body; validate a copy carrying what was sent.
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	r.ContentLength = int64(len(reqBody))
	in := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			MultiError:                        true,
			RejectWhenRequestBodyNotSpecified: true,
			AuthenticationFunc:                openapi3filter.NoopAuthenticationFunc,
		},
	}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	if reqErr == nil {
		reqErr = checkJSON(req.Header.Get("Content-Type"), reqBody)
	}

	respIn := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(respBody)),
		Options:                &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), respIn); err != nil {
		t.Errorf("openapi: response to %s %s (%d) does not match the document: %v\nbody: %s",
			req.Method, req.URL.Path, resp.StatusCode, err, clip(respBody))
	}
	switch {
	case reqErr != nil && resp.StatusCode < 300:
		t.Errorf("openapi: %s %s: the server answered %d to a request the document rejects: %v",
			req.Method, req.URL.Path, resp.StatusCode, reqErr)
	case reqErr == nil && (resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnsupportedMediaType):
		t.Errorf("openapi: %s %s: the server answered %d to a request the document accepts\nbody: %s",
			req.Method, req.URL.Path, resp.StatusCode, clip(respBody))
	}
	return reqErr
}

// checkJSON holds a JSON request body to RFC 8259, which the document's
// "application/json" means but kin-openapi does not enforce: its decoder
// ignores data after the first value, and it drops media type parameters,
// so it would accept a body in another charset (JSON is UTF-8, §8.1).
func checkJSON(contentType string, body []byte) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return nil
	}
	if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") {
		return fmt.Errorf("application/json in charset %q: JSON is UTF-8 (RFC 8259 §8.1)", cs)
	}
	if len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) {
		return errors.New("the body is not one JSON value (RFC 8259)")
	}
	return nil
}

func clip(b []byte) []byte {
	if len(b) > 2000 {
		return append(b[:2000:2000], "…"...)
	}
	return b
}
