package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy allows nothing but this origin: scripts and styles
// from files (no inline code, no eval), the WebSocket and fetches to the same
// host, and data: images only. frame-ancestors, base-uri and form-action
// close the remaining doors (clickjacking, <base> injection, form posts).
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// contentTypes is explicit rather than mime.TypeByExtension, whose answer
// depends on the machine's /etc/mime.types.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the page at exactly / and the files under /assets/; every
// other path is 404. Mount it as
//
//	mux.Handle("GET /{$}", web.Handler())
//	mux.Handle("GET /assets/", web.Handler())
//
// Asset URLs carry no content hash (there is no build step to rewrite the
// module imports), so every response is "Cache-Control: no-cache" with a
// strong ETag of its content: browsers revalidate and get 304 until a new
// binary changes the file.
func Handler() http.Handler {
	return handler
}

var handler = mustLoad()

type server struct {
	files map[string]asset // by URL path: "/" and "/assets/…"
}

func mustLoad() *server {
	s := &server{files: map[string]asset{}}
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(name)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			panic("web: no content type for " + name + "; add its extension to contentTypes")
		}
		sum := sha256.Sum256(body)
		urlPath := strings.TrimPrefix(name, "static")
		if urlPath == "/index.html" {
			urlPath = "/"
		}
		s.files[urlPath] = asset{body: body, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("web: reading embedded files: " + err.Error())
	}
	if _, ok := s.files["/"]; !ok {
		panic("web: static/index.html is missing")
	}
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("Referrer-Policy", "no-referrer")
	// ServeContent answers If-None-Match with 304 and HEAD without a body.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
