package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/web"
)

// newServer mounts the handler the way cmd/orderflow/serve.go does.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", web.Handler())
	mux.Handle("GET /assets/", web.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestHandlerServesThePageAndAssetsWithTheirTypesAndSecurityHeaders(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/assets/app.js">`},
		{"/assets/app.js", "text/javascript; charset=utf-8", "import { Stream } from './stream.js'"},
		{"/assets/stream.js", "text/javascript; charset=utf-8", "CLOSE_SLOW_CONSUMER = 4008"},
		{"/assets/model.js", "text/javascript; charset=utf-8", "export class Orders"},
		{"/assets/chart.js", "text/javascript; charset=utf-8", "export class BarChart"},
		{"/assets/money.js", "text/javascript; charset=utf-8", "export function formatMinor"},
		{"/assets/style.css", "text/css; charset=utf-8", ":root"},
		{"/assets/favicon.svg", "image/svg+xml", "<svg"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res, body := get(t, srv.URL+tc.path, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			h := res.Header
			want := map[string]string{
				"Content-Type":            tc.contentType,
				"Content-Security-Policy": web.ContentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"Cache-Control":           "no-cache",
			}
			for k, v := range want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if h.Get("ETag") == "" {
				t.Error("no ETag")
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
		})
	}
}

func TestThePolicyAllowsOnlyThisOrigin(t *testing.T) {
	for _, d := range []string{"default-src 'self'", "connect-src 'self' ws: wss:", "img-src 'self' data:",
		"style-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(web.ContentSecurityPolicy, d+";") && !strings.HasSuffix(web.ContentSecurityPolicy, d) {
			t.Errorf("policy lacks %q", d)
		}
	}
	if strings.Contains(web.ContentSecurityPolicy, "unsafe") {
		t.Error("policy allows something unsafe")
	}
}

// The page must keep working under its own policy: no inline script or
// style, and nothing from another origin.
func TestThePageNeedsNothingThePolicyForbids(t *testing.T) {
	srv := newServer(t)
	_, page := get(t, srv.URL+"/", nil)
	for _, bad := range []string{"<script>", "style=", "<style", "http://", "https://", "//fonts.", "onclick="} {
		if strings.Contains(page, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	for _, asset := range []string{"/assets/app.js", "/assets/stream.js", "/assets/model.js", "/assets/chart.js", "/assets/money.js", "/assets/style.css"} {
		_, body := get(t, srv.URL+asset, nil)
		for _, bad := range []string{"http://", "https://", "@import", "eval(", "new Function", "innerHTML", "setAttribute('style'"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", asset, bad)
			}
		}
	}
}

func TestUnknownPathsAre404(t *testing.T) {
	srv := newServer(t)
	for _, p := range []string{"/assets/", "/assets/nope.js", "/assets/../index.html", "/index.html", "/static/index.html", "/assets/app.js/"} {
		res, _ := get(t, srv.URL+p, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, res.StatusCode)
		}
	}
	// Mounted only for GET (and HEAD) by the mux patterns.
	res, err := http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", res.StatusCode)
	}
}

func TestARevalidationWithTheETagIs304(t *testing.T) {
	srv := newServer(t)
	res, _ := get(t, srv.URL+"/assets/app.js", nil)
	etag := res.Header.Get("ETag")
	res, body := get(t, srv.URL+"/assets/app.js", http.Header{"If-None-Match": {etag}})
	if res.StatusCode != http.StatusNotModified || body != "" {
		t.Fatalf("status %d with %d bytes, want 304 and no body", res.StatusCode, len(body))
	}
}

func TestHandlerItselfRefusesOtherMethods(t *testing.T) {
	rec := httptest.NewRecorder()
	web.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("DELETE /: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}
