// Package web serves the operations dashboard: one page at / and its
// assets under /assets/, embedded in the binary with go:embed.
//
// The page is plain ES modules, CSS and a hand-drawn <canvas> chart: there is
// no build step and nothing is fetched from another origin (no CDN, no web
// fonts), so the Content-Security-Policy can be 'self' only. Its data comes
// from the same server: the WebSocket hub (GET /v1/stream), the query API
// (GET /v1/stats/status), GET /v1/projections and GET /readyz.
//
// The browser test (browser_test.go, driving e2e/dashboard.mjs) runs the real
// binary and a real headless Chromium; `make browser-deps` installs what it
// needs.
package web
