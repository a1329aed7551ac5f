package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/httpx"
)

// httpConfig is the HTTP transport of serve: the public and the operations
// listeners, TLS, server timeouts, size limits, rate limits and the browser
// rules (CORS, cross-origin protection). README "Limits and transport
// security" explains each choice.
type httpConfig struct {
	opsAddr           string
	tlsCertFile       string
	tlsKeyFile        string
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	maxHeaderBytes    int
	trustedProxies    string
	corsOrigins       string
	rates             [len(rateClasses)]httpx.Rate
	rateKeys          int
}

// rateClasses are the route classes with a rate limit setting each, and
// their defaults per client: generous for a person or a shop's backend,
// tight for what an abuser would loop on.
var rateClasses = [...]struct {
	class httpx.Class
	def   httpx.Rate
	what  string
}{
	{httpx.ClassCommands, httpx.Rate{PerSecond: 50, Burst: 100}, "commands (POST, DELETE)"},
	{httpx.ClassQueries, httpx.Rate{PerSecond: 100, Burst: 200}, "queries (GET)"},
	{httpx.ClassStream, httpx.Rate{PerSecond: 2, Burst: 10}, "WebSocket upgrades of /v1/stream"},
}

func (h *httpConfig) register(f *flags) {
	f.string(&h.opsAddr, "ops-addr", "ORDERFLOW_OPS_ADDR", "127.0.0.1:9090", "listen address of the operations endpoints (/metrics, /v1/projections, the detailed /readyz); it serves the public routes too, so the dashboard opened there shows the pipeline's lag")
	f.string(&h.tlsCertFile, "tls-cert-file", "ORDERFLOW_TLS_CERT_FILE", "", "PEM certificate chain: serve HTTPS and WSS on the HTTP address (with --tls-key-file)")
	f.string(&h.tlsKeyFile, "tls-key-file", "ORDERFLOW_TLS_KEY_FILE", "", "PEM private key of --tls-cert-file")
	f.duration(&h.readHeaderTimeout, "http-read-header-timeout", "ORDERFLOW_HTTP_READ_HEADER_TIMEOUT", 5*time.Second, "time to read a request's headers")
	f.duration(&h.readTimeout, "http-read-timeout", "ORDERFLOW_HTTP_READ_TIMEOUT", 30*time.Second, "time to read a whole request, body included")
	f.duration(&h.writeTimeout, "http-write-timeout", "ORDERFLOW_HTTP_WRITE_TIMEOUT", 30*time.Second, "time from a request's headers to the end of its response (WebSocket streams are not bound by it: they set a deadline per frame)")
	f.duration(&h.idleTimeout, "http-idle-timeout", "ORDERFLOW_HTTP_IDLE_TIMEOUT", 2*time.Minute, "how long a keep-alive connection may wait for its next request")
	f.int(&h.maxHeaderBytes, "http-max-header-bytes", "ORDERFLOW_HTTP_MAX_HEADER_BYTES", 16<<10, "largest request header block in bytes; beyond, 431 (Go allows 4096 bytes of slack)")
	f.string(&h.trustedProxies, "trusted-proxies", "ORDERFLOW_TRUSTED_PROXIES", "", "comma-separated CIDRs of the proxies whose X-Forwarded-For is believed (empty: none; the peer address is the client)")
	f.string(&h.corsOrigins, "cors-allowed-origins", "ORDERFLOW_CORS_ALLOWED_ORIGINS", "", "comma-separated Origins whose browser pages may call the API (CORS) and send it state-changing requests (empty: same origin only)")
	for i, rc := range rateClasses {
		name, env := "rate-"+string(rc.class), "ORDERFLOW_RATE_"+strings.ToUpper(string(rc.class))
		f.float(&h.rates[i].PerSecond, name, env, rc.def.PerSecond, "requests per second per client for "+rc.what+" (0: no limit)")
		f.int(&h.rates[i].Burst, name+"-burst", env+"_BURST", rc.def.Burst, "burst per client for "+rc.what)
	}
	f.int(&h.rateKeys, "rate-limit-keys", "ORDERFLOW_RATE_LIMIT_KEYS", httpx.DefaultRateLimitKeys, "clients each rate limit remembers (LRU; about 200 bytes each)")
}

func (h *httpConfig) validate(f *flags, httpAddr string) {
	_, _, err := net.SplitHostPort(h.opsAddr)
	f.check(err != nil, "ORDERFLOW_OPS_ADDR=%q: want host:port or :port", h.opsAddr)
	f.check(h.opsAddr == httpAddr, "ORDERFLOW_OPS_ADDR must differ from ORDERFLOW_HTTP_ADDR: the operations endpoints have their own listener")
	switch {
	case (h.tlsCertFile == "") != (h.tlsKeyFile == ""):
		f.check(true, "ORDERFLOW_TLS_CERT_FILE and ORDERFLOW_TLS_KEY_FILE go together: set both or neither")
	case h.tlsCertFile != "":
		_, err := tls.LoadX509KeyPair(h.tlsCertFile, h.tlsKeyFile)
		f.check(err != nil, "ORDERFLOW_TLS_CERT_FILE / _KEY_FILE: %v", err)
	}
	for _, d := range []struct {
		env string
		v   time.Duration
	}{{"ORDERFLOW_HTTP_READ_HEADER_TIMEOUT", h.readHeaderTimeout}, {"ORDERFLOW_HTTP_READ_TIMEOUT", h.readTimeout},
		{"ORDERFLOW_HTTP_WRITE_TIMEOUT", h.writeTimeout}, {"ORDERFLOW_HTTP_IDLE_TIMEOUT", h.idleTimeout}} {
		f.check(d.v <= 0, "%s must be positive: an unbounded wait is what a slow client exploits", d.env)
	}
	f.check(h.maxHeaderBytes < 4<<10 || h.maxHeaderBytes > 1<<20, "ORDERFLOW_HTTP_MAX_HEADER_BYTES must be 4096 to 1048576")
	_, err = httpx.NewClients(splitList(h.trustedProxies))
	f.check(err != nil, "ORDERFLOW_TRUSTED_PROXIES: %v", err)
	err = httpx.ParseOrigins(splitList(h.corsOrigins))
	f.check(err != nil, "ORDERFLOW_CORS_ALLOWED_ORIGINS: %v", err)
	for i, rc := range rateClasses {
		env := "ORDERFLOW_RATE_" + strings.ToUpper(string(rc.class))
		f.check(h.rates[i].PerSecond < 0, "%s must not be negative (0 turns the limit off)", env)
		f.check(h.rates[i].PerSecond > 0 && h.rates[i].Burst < 1, "%s_BURST must be at least 1", env)
	}
	f.check(h.rateKeys < 1, "ORDERFLOW_RATE_LIMIT_KEYS must be at least 1")
}

func (h *httpConfig) tls() bool { return h.tlsCertFile != "" }

// clients is who sent a request, by ORDERFLOW_TRUSTED_PROXIES.
func (h *httpConfig) clients() (*httpx.Clients, error) {
	return httpx.NewClients(splitList(h.trustedProxies))
}

// limiter builds the per-client rate limiter, keyed by clients.Key: per
// address now, per subject once authentication records a principal before
// it runs.
func (h *httpConfig) limiter(reg prometheus.Registerer, clients *httpx.Clients) (*httpx.RateLimiter, error) {
	rates := map[httpx.Class]httpx.Rate{}
	for i, rc := range rateClasses {
		rates[rc.class] = h.rates[i]
	}
	return httpx.NewRateLimiter(httpx.RateLimitConfig{Rates: rates, Keys: h.rateKeys, Key: clients.Key, Registerer: reg})
}

// handlers wraps the public routes and the operations routes. Public,
// outermost first: request ids, panics and logging; authentication (the
// token verified and its principal recorded, refusing nothing: each
// route's rule does); security headers; CORS; metrics; cross-origin
// protection; the routes (rate limits and access rules sit on the routes).
// The operations listener serves its own routes and, for every other path,
// the public chain, so that the dashboard opened there reaches
// /v1/projections and the detailed /readyz on its own origin.
func (h *httpConfig) handlers(log *slog.Logger, reg prometheus.Registerer, v *auth.Verifier, public, ops *http.ServeMux) (http.Handler, http.Handler, error) {
	origins := splitList(h.corsOrigins)
	protected, err := httpx.CrossOriginProtection(origins, public)
	if err != nil {
		return nil, nil, err
	}
	measured, err := httpx.Metrics(reg, protected)
	if err != nil {
		return nil, nil, err
	}
	inner := httpx.SecurityHeaders(h.tls(), httpx.CORS(origins, measured))
	ops.Handle("/", inner)
	return httpx.Middleware(log, auth.Authenticate(v, inner)), httpx.Middleware(log, auth.Authenticate(v, httpx.SecurityHeaders(false, ops))), nil
}

// server is an http.Server with the configured timeouts and limits. The
// WebSocket upgrade hijacks its connection, which clears the server's
// deadlines; the hub then sets a write deadline per frame and a read
// deadline per pong wait, so WriteTimeout bounds every response (a client
// that never reads a long history frees its handler when it passes) but no
// stream.
func (h *httpConfig) server(handler http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: h.readHeaderTimeout,
		ReadTimeout:       h.readTimeout,
		WriteTimeout:      h.writeTimeout,
		IdleTimeout:       h.idleTimeout,
		MaxHeaderBytes:    h.maxHeaderBytes,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
		// Malformed requests and failed TLS handshakes: any client can
		// cause them, so they are no warning.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// serveHTTP serves srv on addr (HTTPS when certFile is set) until ctx ends,
// then drains for up to timeout: the requests clients had sent by then are
// answered (httpx.Drainer: the ones http.Server.Shutdown alone would drop
// too), WebSockets are the hub's to close.
func serveHTTP(ctx context.Context, srv *http.Server, addr, certFile, keyFile string, timeout time.Duration, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	drain := httpx.NewDrainer(srv, ln)
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- srv.ServeTLS(drain.Listener(), certFile, keyFile)
			return
		}
		errc <- srv.Serve(drain.Listener())
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down HTTP", "addr", addr, "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := drain.Drain(sctx); err != nil {
		log.Warn("draining HTTP connections", "addr", addr, "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown %s: %w", addr, err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
