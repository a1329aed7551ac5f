package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBody bounds a request body. Commands are small; anything larger is a
// mistake or an attack.
const MaxBody = 64 << 10

// ReadBody reads a JSON request body strictly: Content-Type must be
// application/json (a charset, if any, utf-8), and the body at most MaxBody.
// An empty body is returned as "{}" so that commands without fields accept
// both. The returned problem is nil on success.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, *Problem) {
	if r.ContentLength != 0 || r.Header.Get("Content-Type") != "" {
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
			return nil, NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type",
				"Unsupported media type", "request bodies must be application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, NewProblem(http.StatusRequestEntityTooLarge, "body-too-large",
				"Request body too large", fmt.Sprintf("request bodies are limited to %d bytes", MaxBody))
		}
		return nil, NewProblem(http.StatusBadRequest, "malformed-json", "Malformed request body", "the body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return []byte("{}"), nil
	}
	return body, nil
}

// Decode strictly decodes body into v: unknown fields and trailing data are
// errors, and the problem names the offending field where it can.
func Decode(body []byte, v any) *Problem {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return NewProblem(http.StatusBadRequest, "malformed-json", "Malformed request body",
			"the body must hold exactly one JSON object, with nothing after it")
	}
	return nil
}

func decodeProblem(err error) *Problem {
	var (
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	p := NewProblem(http.StatusBadRequest, "malformed-json", "Malformed request body", "")
	switch {
	case errors.As(err, &syntax):
		p.Detail = fmt.Sprintf("invalid JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typeError):
		p.Detail = "a field has the wrong JSON type"
		p.Errors = []FieldError{{Field: typeError.Field, Message: "must be " + typeError.Type.String()}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p.Detail = "the body has a field this command does not know"
		p.Errors = []FieldError{{Field: field, Message: "unknown field"}}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		p.Detail = "the JSON body ends too early"
	default:
		p.Detail = err.Error()
	}
	return p
}
