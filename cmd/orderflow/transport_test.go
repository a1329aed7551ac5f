package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/web"
)

func TestServeConfigValidation(t *testing.T) {
	cert, key := selfSigned(t)
	base := []string{"--database-url=postgres://orderflow@127.0.0.1:5432/orderflow",
		"--auth-jwks-url=https://idp.example.com/.well-known/jwks.json", "--auth-issuer=https://idp.example.com/", "--auth-audience=orderflow"}
	bad := map[string][]string{
		"an ops address that is no address":                  {"--ops-addr=nope"},
		"the ops address equal to the HTTP address":          {"--http-addr=127.0.0.1:8080", "--ops-addr=127.0.0.1:8080"},
		"a certificate without its key":                      {"--tls-cert-file=" + cert},
		"certificate files that do not exist":                {"--tls-cert-file=/nonexistent.pem", "--tls-key-file=/nonexistent.key"},
		"a key that is not the certificate's":                {"--tls-cert-file=" + cert, "--tls-key-file=" + cert},
		"no write timeout":                                   {"--http-write-timeout=0"},
		"a header limit below 4 KiB":                         {"--http-max-header-bytes=100"},
		"a trusted proxy that is no CIDR":                    {"--trusted-proxies=10.0.0.0/33"},
		"a CORS origin without a scheme":                     {"--cors-allowed-origins=shop.example.com"},
		"a negative rate":                                    {"--rate-commands=-1"},
		"a rate without a burst":                             {"--rate-queries=5", "--rate-queries-burst=0"},
		"no WebSocket connection allowed":                    {"--hub-max-connections=0"},
		"no subscribe allowed":                               {"--hub-subscribe-rate=0"},
		"a recovery pool of no connection":                   {"--hub-recovery-conns=0"},
		"a statement timeout too short to run any statement": {"--db-statement-timeout=10ms"},
		"a trace exporter orderflow does not have":           {"--trace-exporter=jaeger"},
	}
	for name, args := range bad {
		t.Run("refuses "+name, func(t *testing.T) {
			if _, err := parseServe(append(base, args...)); err == nil {
				t.Errorf("%v accepted", args)
			}
		})
	}
	good := map[string][]string{
		"the defaults":                  nil,
		"proxies, origins, no limits":   {"--trusted-proxies=10.0.0.0/8,192.0.2.1,2001:db8::/32", "--cors-allowed-origins=https://shop.example.com,http://localhost:3000", "--rate-commands=0", "--db-statement-timeout=0"},
		"a certificate and its key":     {"--tls-cert-file=" + cert, "--tls-key-file=" + key},
		"tight limits for a small node": {"--hub-max-connections=10", "--hub-max-connections-per-client=1", "--hub-subscribe-rate=0.5", "--hub-recovery-conns=1"},
		"the OTLP trace exporter":       {"--trace-exporter=otlp"},
	}
	for name, args := range good {
		t.Run("accepts "+name, func(t *testing.T) {
			c, err := parseServe(append(base, args...))
			if err != nil {
				t.Fatalf("%v refused: %v", args, err)
			}
			if name == "the defaults" && (c.http.opsAddr != "127.0.0.1:9090" || c.http.writeTimeout != 30*time.Second ||
				c.http.maxHeaderBytes != 16<<10 || c.dbStatementTimeout != 10*time.Second || c.http.tls()) {
				t.Errorf("defaults %+v, statement timeout %v", c.http, c.dbStatementTimeout)
			}
		})
	}
}

// TestServingPoolsHaveTheStatementTimeout: the URL serve's pools use makes
// PostgreSQL enforce statement_timeout on every session.
func TestServingPoolsHaveTheStatementTimeout(t *testing.T) {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Fatal("DATABASE_URL is not set: run make test, or point it at a PostgreSQL server")
	}
	serving, err := withStatementTimeout(url, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), serving)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var got string
	if err := conn.QueryRow(t.Context(), "SHOW statement_timeout").Scan(&got); err != nil || got != "1500ms" {
		t.Errorf("statement_timeout = %q (%v), want 1500ms", got, err)
	}
	if _, err := conn.Exec(t.Context(), "SELECT pg_sleep(30)"); err == nil || !strings.Contains(err.Error(), "statement timeout") {
		t.Errorf("a 30 s statement: %v, want it cancelled by the statement timeout", err)
	}
}

// TestALongResponseToAClientThatNeverReadsEndsAtTheWriteTimeout: the
// handler of a response the client does not read is freed (its write fails)
// once the write timeout passes, instead of holding its buffer and goroutine
// for as long as the client keeps the connection.
func TestALongResponseToAClientThatNeverReadsEndsAtTheWriteTimeout(t *testing.T) {
	hc := httpConfig{readHeaderTimeout: time.Minute, readTimeout: time.Minute, writeTimeout: 500 * time.Millisecond,
		idleTimeout: time.Minute, maxHeaderBytes: 16 << 10}
	writeErr := make(chan error, 1)
	chunk := make([]byte, 64<<10)
	srv := hc.server(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for {
			if _, err := w.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
	}), slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := fmt.Fprintf(conn, "GET /history HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select { // and the client never reads
	case err := <-writeErr:
		t.Logf("the handler was freed: %v", err)
	case <-time.After(testenv.Patience):
		t.Fatal("the handler is still writing to a client that never reads")
	}
}

// serveFor runs the real binary with every role on a fresh database.
func serveFor(t *testing.T, env ...string) *testenv.Server {
	t.Helper()
	return testenv.New(t).Serve(t, env...)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func send(t *testing.T, c *http.Client, method, url string, body string, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	// Every request carries a token of every role unless the test sends
	// its own: these tests are about the transport, not about access.
	req.Header.Set("Authorization", testenv.Operator(t))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

// newOrderBody creates an order for the operator token's subject (a
// customer creates orders for itself only).
const newOrderBody = `{"customer_id":"` + testenv.OperatorSubject + `","currency":"EUR","items":[{"sku":"BOOK-1","name":"A book","quantity":1,"unit_price_minor":1250}]}`

func TestServeTransport(t *testing.T) {
	t.Parallel()
	srv := serveFor(t, "ORDERFLOW_HTTP_MAX_HEADER_BYTES=4096", "ORDERFLOW_HTTP_WRITE_TIMEOUT=1s")
	c := &http.Client{Timeout: time.Minute}

	t.Run("the public /readyz says ready and nothing more; the ops listener has the details", func(t *testing.T) {
		r := send(t, c, http.MethodGet, srv.URL+"/readyz", "")
		if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"status":"ready"}` {
			t.Errorf("public: %d %s", r.status, r.body)
		}
		r = send(t, c, http.MethodGet, srv.OpsURL+"/readyz", "")
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"postgres"`) {
			t.Errorf("ops: %d %s", r.status, r.body)
		}
	})
	t.Run("metrics and projection status are served on the ops listener only", func(t *testing.T) {
		for _, p := range []string{"/metrics", "/v1/projections"} {
			if r := send(t, c, http.MethodGet, srv.URL+p, ""); r.status != http.StatusNotFound {
				t.Errorf("public %s: %d", p, r.status)
			}
			if r := send(t, c, http.MethodGet, srv.OpsURL+p, ""); r.status != http.StatusOK {
				t.Errorf("ops %s: %d", p, r.status)
			}
		}
		// The ops listener serves the public routes too (the dashboard's).
		if r := send(t, c, http.MethodGet, srv.OpsURL+"/v1/stats/status", ""); r.status != http.StatusOK {
			t.Errorf("ops /v1/stats/status: %d", r.status)
		}
	})
	t.Run("every response carries the security headers, and the dashboard keeps its own policy", func(t *testing.T) {
		for path, csp := range map[string]string{"/nothing": "default-src 'none'; frame-ancestors 'none'",
			"/v1/openapi.yaml": "default-src 'none'; frame-ancestors 'none'", "/": web.ContentSecurityPolicy} {
			r := send(t, c, http.MethodGet, srv.URL+path, "")
			if r.header.Get("Content-Security-Policy") != csp || r.header.Get("X-Content-Type-Options") != "nosniff" ||
				r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("Strict-Transport-Security") != "" {
				t.Errorf("%s: %v", path, r.header)
			}
		}
	})
	t.Run("headers over the limit are answered 431", func(t *testing.T) {
		r := send(t, c, http.MethodGet, srv.URL+"/healthz", "", "X-Padding", strings.Repeat("a", 12<<10))
		if r.status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431", r.status)
		}
		if r := send(t, c, http.MethodGet, srv.URL+"/healthz", "", "X-Padding", strings.Repeat("a", 2<<10)); r.status != http.StatusOK {
			t.Errorf("headers within the limit: %d", r.status)
		}
	})
	t.Run("a bad request id is replaced by a server ULID, in the answer and in the events' metadata", func(t *testing.T) {
		r := send(t, c, http.MethodPost, srv.URL+"/v1/orders", newOrderBody,
			"X-Request-ID", "evil id <script>", "X-Correlation-ID", "<img src=x onerror=alert(1)>")
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		rid := r.header.Get("X-Request-ID")
		if _, err := ulid.ParseStrict(rid); err != nil {
			t.Errorf("X-Request-ID %q, want a server ULID", rid)
		}
		var created struct {
			OrderID string `json:"order_id"`
		}
		_ = json.Unmarshal(r.body, &created)
		r = send(t, c, http.MethodGet, srv.URL+"/v1/orders/"+created.OrderID+"/events", "")
		var evs struct {
			Events []struct {
				Metadata map[string]string `json:"metadata"`
			} `json:"events"`
		}
		if err := json.Unmarshal(r.body, &evs); err != nil || len(evs.Events) == 0 {
			t.Fatalf("events: %s", r.body)
		}
		for _, e := range evs.Events {
			if e.Metadata["request_id"] != rid || e.Metadata["correlation_id"] != rid {
				t.Errorf("metadata %v, want request and correlation id %s", e.Metadata, rid)
			}
		}
	})
	t.Run("made-up methods add no metric series", func(t *testing.T) {
		for i := range 50 {
			send(t, c, fmt.Sprintf("EVIL%d", i), srv.URL+"/v1/orders", "")
		}
		r := send(t, c, http.MethodGet, srv.OpsURL+"/metrics", "")
		if strings.Contains(string(r.body), `method="EVIL`) || !strings.Contains(string(r.body), `method="other"`) {
			t.Errorf("http_requests_total has per-method series for made-up methods")
		}
	})
	t.Run("a body-less cross-site POST is refused before it reaches the command", func(t *testing.T) {
		r := send(t, c, http.MethodPost, srv.URL+"/v1/orders", "",
			"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example.net")
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "cross-origin-refused") {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("a WebSocket stream outlives the write timeout", func(t *testing.T) {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr+"/v1/stream", http.Header{"Authorization": {testenv.Operator(t)}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = ws.Close() }()
		if err := ws.WriteJSON(map[string]any{"type": "subscribe", "channel": "orders"}); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(testenv.Patience))
		var f struct{ Type, Channel string }
		if err := ws.ReadJSON(&f); err != nil || f.Type != "subscribed" {
			t.Fatalf("subscribe: %+v %v", f, err)
		}
		time.Sleep(3 * time.Second) // three write timeouts: a deadline left from the upgrade would have passed
		r := send(t, c, http.MethodPost, srv.URL+"/v1/orders", newOrderBody)
		var created struct {
			OrderID string `json:"order_id"`
		}
		if err := json.Unmarshal(r.body, &created); err != nil || r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		for { // events of earlier subtests' orders may come first
			var ev struct {
				Type     string `json:"type"`
				StreamID string `json:"stream_id"`
			}
			if err := ws.ReadJSON(&ev); err != nil {
				t.Fatalf("after the write timeout: %v", err)
			}
			if ev.Type == "event" && ev.StreamID == created.OrderID {
				break
			}
		}
	})
}

func TestServeTLSAndRateLimits(t *testing.T) {
	t.Parallel()
	cert, key := selfSigned(t)
	srv := serveFor(t, "ORDERFLOW_TLS_CERT_FILE="+cert, "ORDERFLOW_TLS_KEY_FILE="+key,
		"ORDERFLOW_RATE_COMMANDS=0.001", "ORDERFLOW_RATE_COMMANDS_BURST=1")
	pemBytes, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	tlsConf := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("URL %s", srv.URL)
	}

	t.Run("HTTPS with the certificate, and HSTS", func(t *testing.T) {
		r := send(t, c, http.MethodGet, srv.URL+"/healthz", "")
		if r.status != http.StatusOK || r.header.Get("Strict-Transport-Security") == "" {
			t.Errorf("%d %v", r.status, r.header)
		}
	})
	t.Run("plain HTTP to the TLS port is refused", func(t *testing.T) {
		r := send(t, &http.Client{Timeout: time.Minute}, http.MethodGet, "http://"+srv.Addr+"/healthz", "")
		if r.status != http.StatusBadRequest {
			t.Errorf("plain HTTP: %d", r.status)
		}
	})
	t.Run("WSS", func(t *testing.T) {
		d := websocket.Dialer{TLSClientConfig: tlsConf, HandshakeTimeout: time.Minute}
		ws, _, err := d.Dial("wss://"+srv.Addr+"/v1/stream", http.Header{"Authorization": {testenv.Operator(t)}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = ws.Close() }()
		if err := ws.WriteJSON(map[string]any{"type": "subscribe", "channel": "orders"}); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(testenv.Patience))
		var f struct{ Type string }
		if err := ws.ReadJSON(&f); err != nil || f.Type != "subscribed" {
			t.Errorf("%+v %v", f, err)
		}
	})
	t.Run("a client over its command burst gets 429 with Retry-After", func(t *testing.T) {
		if r := send(t, c, http.MethodPost, srv.URL+"/v1/orders", newOrderBody); r.status != http.StatusCreated {
			t.Fatalf("first command: %d %s", r.status, r.body)
		}
		r := send(t, c, http.MethodPost, srv.URL+"/v1/orders", newOrderBody)
		ra, err := strconv.Atoi(r.header.Get("Retry-After"))
		if r.status != http.StatusTooManyRequests || err != nil || ra < 1 || !strings.Contains(string(r.body), "rate-limited") {
			t.Errorf("second command: %d, Retry-After %q: %s", r.status, r.header.Get("Retry-After"), r.body)
		}
		// Queries have their own (here unlimited) class.
		if r := send(t, c, http.MethodGet, srv.URL+"/v1/stats/status", ""); r.status != http.StatusOK {
			t.Errorf("a query after the commands ran out: %d", r.status)
		}
	})
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// and its key, and returns their paths.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "orderflow test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}
