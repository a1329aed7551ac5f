package web_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/orderflow/orderflow/commands"
	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/faultproxy"
	"github.com/orderflow/orderflow/internal/migrate"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/relay"
)

// TestDashboardInABrowser runs the real binary (every role, embedded Kafka,
// a fresh database) and drives the page in headless Chromium with
// e2e/dashboard.mjs: commands sent through the API must show in the live
// feed and the status counts, and after its connections are cut the page
// must show that it is cut off, resume from its last position, show what it
// missed once and poll its health again. The requests the cut fails are
// expected; any other error the page reports fails the test. Waits are hang
// guards (30 s), never latency targets: the script prints how long each
// step took. The browser reaches the server through a TCP proxy the script
// can cut (internal/faultproxy); commands go straight to the server.
// Screenshots are kept in test-artifacts/web/.
func TestDashboardInABrowser(t *testing.T) {
	node := browserDeps(t)
	db := pgtest.New(t,
		migrate.Set{Name: "eventstore", FS: eventstore.Migrations()},
		migrate.Set{Name: "commands", FS: commands.Migrations()},
		migrate.Set{Name: "relay", FS: relay.Migrations()},
		migrate.Set{Name: "projections", FS: projections.Migrations()},
	)

	bin := filepath.Join(t.TempDir(), "orderflow")
	build := exec.Command("go", "build", "-o", bin, "./cmd/orderflow")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/orderflow: %v\n%s", err, out)
	}

	httpAddr, kafkaAddr := freeAddr(t), freeAddr(t)
	artifacts, err := filepath.Abs(filepath.Join("..", "test-artifacts", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(artifacts, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logFile.Close() }()

	srv := exec.Command(bin, "serve")
	srv.Env = append(os.Environ(),
		"DATABASE_URL="+db.URL,
		"ORDERFLOW_HTTP_ADDR="+httpAddr,
		"ORDERFLOW_KAFKA_EMBEDDED_ADDR="+kafkaAddr,
		"KAFKA_BROKERS=",
		"ORDERFLOW_SHUTDOWN_TIMEOUT=5s",
	)
	srv.Stdout, srv.Stderr = logFile, logFile
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
	})
	failWithLog := func(format string, args ...any) {
		t.Helper()
		b, _ := os.ReadFile(logPath)
		t.Fatalf(format+"\nserver log (%s):\n%s", append(args, logPath, tail(string(b), 60))...)
	}

	base := "http://" + httpAddr
	if err := waitReady(base+"/readyz", exited, 90*time.Second); err != nil {
		failWithLog("orderflow serve did not become ready: %v", err)
	}

	if err := streamReachable("ws://" + httpAddr + "/v1/stream"); err != nil {
		failWithLog("the page needs the WebSocket hub: %v", err)
	}

	proxy, err := faultproxy.New(httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	control := faultControl(t, proxy)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	script := exec.CommandContext(ctx, node, filepath.Join("e2e", "dashboard.mjs"), "http://"+proxy.Addr()+"/", artifacts)
	script.Env = append(os.Environ(), "ORDERFLOW_API_URL="+base, "ORDERFLOW_FAULT_URL="+control, "CHROMIUM="+chromiumPath)
	out := &lockedBuffer{}
	script.Stdout, script.Stderr = out, out
	err = script.Run()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		t.Log(line)
	}
	if err != nil {
		failWithLog("e2e/dashboard.mjs failed: %v (screenshots in %s)", err, artifacts)
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
func streamReachable(url string) error {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, res, err := d.Dial(url, nil)
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

func waitReady(url string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := errors.New("no answer yet")
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("the server exited: %v", err)
		default:
		}
		res, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s: %d %s", url, res.StatusCode, b)
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return last
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

func tail(s string, lines int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var all []string
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	return strings.Join(all[max(0, len(all)-lines):], "\n")
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
