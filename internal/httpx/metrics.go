package httpx

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts requests and their durations by route pattern (never by
// path: an order id in a label would make one series per order) and method.
// Every label is bounded: the route is a registered pattern or
// "unmatched", the method one of the standard ones or "other" (a client can
// send any token as a method, and each would be a new series), the code a
// status the handlers wrote. The request's span (Trace) is named by the same
// route.
func Metrics(reg prometheus.Registerer, next http.Handler) (http.Handler, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "HTTP request durations by route pattern and method (WebSocket sessions excluded).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "method"})
	for _, c := range []prometheus.Collector{requests, duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		// ServeMux records the matched pattern on the request it was given.
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		method := MethodLabel(r.Method)
		requests.WithLabelValues(route, method, strconv.Itoa(rec.status)).Inc()
		annotateSpan(r, route, method, rec.status)
		recordRoute(r, route)
		if rec.status != http.StatusSwitchingProtocols {
			duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		}
	}), nil
}

// MethodLabel is the method as a metric label: the RFC 9110 methods and
// PATCH as they are, anything else "other".
func MethodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}
