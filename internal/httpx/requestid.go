package httpx

import (
	"context"
	"net/http"

	"github.com/oklog/ulid/v2"
)

// MaxIDLen bounds a client-chosen request or correlation id.
const MaxIDLen = 64

// ValidID reports whether a client-chosen request or correlation id may be
// kept: 1 to MaxIDLen characters from A-Z, a-z, 0-9 and "-_.:". That holds
// ULIDs, UUIDs, W3C trace ids and the ids of common tracing systems, and
// keeps markup, spaces, control characters and oversized values out of the
// logs and out of the events' metadata, which are append-only: what goes in
// there is never cleaned up.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// Header names of the request identifiers.
const (
	HeaderRequestID     = "X-Request-ID"
	HeaderCorrelationID = "X-Correlation-ID"
)

// identify returns the request's id and correlation id. A request id that
// fails ValidID (or is missing) is replaced by a server ULID; a correlation
// id that fails it (or is missing) is the request id: the correlation then
// starts with this request, as it does for a client that sends none.
func identify(r *http.Request) (id, corr string) {
	id = r.Header.Get(HeaderRequestID)
	if !ValidID(id) {
		id = ulid.Make().String()
	}
	corr = r.Header.Get(HeaderCorrelationID)
	if !ValidID(corr) {
		corr = id
	}
	return id, corr
}

// CorrelationID returns the request's correlation id (set by Middleware,
// always valid).
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationIDKey).(string)
	return id
}
