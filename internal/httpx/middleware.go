package httpx

import (
	"bufio"
	"cmp"
	"context"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	correlationIDKey
	actorKey
)

// RequestID returns the request's id (set by Middleware).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// Actor returns who issued the request; "anonymous" until authentication
// sets it.
func Actor(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey).(string); ok && a != "" {
		return a
	}
	return "anonymous"
}

// WithActor records the authenticated principal. It is also the hook that
// turns per-client rate limits into per-subject ones: ClientKey keys a
// request by its principal once one is set (see ratelimit.go).
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey, actor)
}

// Principal returns the principal WithActor recorded, and false before
// authentication (or without it).
func Principal(ctx context.Context) (string, bool) {
	a, ok := ctx.Value(actorKey).(string)
	return a, ok && a != ""
}

// Middleware gives every request an id and a correlation id (X-Request-ID
// and X-Correlation-ID, kept when the client sent ones that pass ValidID,
// see identify), recovers panics as a 500 problem, and logs one line per
// request. The request's X-Correlation-ID header is overwritten with the
// validated value, so handlers that read the header see only that.
func Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id, corr := identify(r)
		w.Header().Set(HeaderRequestID, id)
		r.Header.Set(HeaderCorrelationID, corr)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		route := new(string) // filled by Metrics, beside the mux (the matched pattern)
		ctx = context.WithValue(ctx, routeKey{}, route)
		r = r.WithContext(context.WithValue(ctx, correlationIDKey, corr))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic serving request", "request_id", id, "panic", v, "stack", string(debug.Stack()))
				if !rec.wrote {
					WriteProblem(rec, r, NewProblem(http.StatusInternalServerError, "internal", "Internal error",
						"the server failed; the request id identifies it in the logs"))
				}
			}
			// Checked first: the attributes escape into a slice that every
			// request would allocate, logged or not.
			if level := levelFor(rec.status); log.Enabled(r.Context(), level) {
				// The route's pattern, never the path: paths carry customer
				// ids (internal/pii/DESIGN.md).
				log.LogAttrs(r.Context(), level, "http request",
					slog.String("method", r.Method), slog.String("route", cmp.Or(*route, r.Pattern, "unmatched")),
					slog.Int("status", rec.status), slog.Duration("duration", time.Since(start)),
					slog.String("request_id", id))
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelDebug
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (WebSocket
// upgrades hijack it).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack hands the connection over (WebSocket upgrades). gorilla/websocket
// asserts http.Hijacker on the writer itself, so the recorder must offer it.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err == nil {
		s.status, s.wrote = http.StatusSwitchingProtocols, true
	}
	return conn, rw, err
}

// Flush passes streaming writes through.
func (s *statusRecorder) Flush() { _ = http.NewResponseController(s.ResponseWriter).Flush() }

// routeKey holds the *string the request log reads the matched route from.
type routeKey struct{}

// recordRoute tells the request log (Middleware) the route that matched.
func recordRoute(r *http.Request, route string) {
	if p, ok := r.Context().Value(routeKey{}).(*string); ok {
		*p = route
	}
}
