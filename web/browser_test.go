package web_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/faultproxy"
	"github.com/orderflow/orderflow/internal/testenv"
)

// TestDashboardInABrowser runs the real binary (every role, embedded Kafka,
// a fresh database) and drives the page in headless Chromium with
// e2e/dashboard.mjs: commands sent through the API must show in the live
// feed and the status counts, and after its connections are cut the page
// must show that it is cut off, resume from its last position, show what it
// missed once and poll its health again. The requests the cut fails are
// expected; any other error the page reports fails the test. Waits are hang
// guards (30 s), never latency targets: the script prints how long each
// step took. The browser opens the page on the operations listener (the one
// that serves /v1/projections and the detailed /readyz besides the public
// routes) through a TCP proxy the script can cut (internal/faultproxy);
// commands go straight to the public listener.
// Screenshots are kept in test-artifacts/web/.
func TestDashboardInABrowser(t *testing.T) {
	t.Parallel()
	node := browserDeps(t)
	srv := testenv.New(t).Serve(t)
	artifacts, err := filepath.Abs(filepath.Join("..", "test-artifacts", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	// Every role: the page shows the feed (staff), the counts, and the
	// pipeline's lag (admin); the script's commands create orders for the
	// token's subject.
	token := testenv.Token(t, testenv.OperatorSubject, auth.Roles...)
	if err := streamReachable("ws://"+srv.OpsAddr+"/v1/stream", token); err != nil {
		srv.Fatalf(t, "the page needs the WebSocket hub: %v", err)
	}

	proxy, err := faultproxy.New(srv.OpsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	control := faultControl(t, proxy)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	script := exec.CommandContext(ctx, node, filepath.Join("e2e", "dashboard.mjs"), "http://"+proxy.Addr()+"/", artifacts)
	script.Env = append(os.Environ(), "ORDERFLOW_API_URL="+srv.URL, "ORDERFLOW_FAULT_URL="+control, "CHROMIUM="+chromiumPath,
		"ORDERFLOW_TOKEN="+token, "ORDERFLOW_SUBJECT="+testenv.OperatorSubject)
	out := &lockedBuffer{}
	script.Stdout, script.Stderr = out, out
	err = script.Run()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		t.Log(line)
	}
	if err != nil {
		srv.Fatalf(t, "e2e/dashboard.mjs failed: %v (screenshots in %s)", err, artifacts)
	}
}

// faultControl serves POST /cut and POST /restore for the script, and
// returns its base URL.
func faultControl(t *testing.T, p *faultproxy.Proxy) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cut", func(http.ResponseWriter, *http.Request) { p.Cut() })
	mux.HandleFunc("POST /restore", func(http.ResponseWriter, *http.Request) { p.Restore() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return "http://" + ln.Addr().String()
}

// streamReachable checks the WebSocket upgrade at /v1/stream, so that a
// missing or broken hub is reported as such rather than as a page that never
// says "connected".
func streamReachable(url, token string) error {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, res, err := d.Dial(url, http.Header{"Authorization": {"Bearer " + token}})
	if err == nil {
		return c.Close()
	}
	if res == nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	switch res.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("GET %s is 404: cmd/orderflow/serve.go does not serve streams/hub (role hub)", url)
	case http.StatusInternalServerError:
		return fmt.Errorf("GET %s: the upgrade failed with 500 (does every middleware's ResponseWriter implement http.Hijacker? gorilla/websocket asserts it)", url)
	}
	return fmt.Errorf("GET %s: %d: %w", url, res.StatusCode, err)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
