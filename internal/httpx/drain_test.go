package httpx_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/httpx"
)

// hangGuard bounds every wait of these tests; none is a latency target.
const hangGuard = time.Minute

// drainServer is a server on a fresh 127.0.0.1 listener, prepared with a
// Drainer, that answers "ok"; news receives every connection it accepts
// (StateNew). Serve it with serve.
func drainServer(t *testing.T, readHeaderTimeout time.Duration) (*http.Server, *httpx.Drainer, string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	news := make(chan net.Conn, 16)
	srv := &http.Server{
		ReadHeaderTimeout: readHeaderTimeout,
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				news <- c
			}
		},
	}
	d := httpx.NewDrainer(srv, ln)
	t.Cleanup(func() { _ = srv.Close() })
	return srv, d, ln.Addr().String(), news
}

func serve(t *testing.T, srv *http.Server, d *httpx.Drainer) {
	t.Helper()
	go func() {
		if err := srv.Serve(d.Listener()); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
}

// drainThenShutdown runs Drain then Shutdown, as serve does on SIGTERM,
// and returns Drain's error when both are done.
func drainThenShutdown(srv *http.Server, d *httpx.Drainer) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		err := d.Drain(ctx)
		if serr := srv.Shutdown(ctx); err == nil {
			err = serr
		}
		done <- err
	}()
	return done
}

// waitRefused waits until addr refuses connections: the drain has closed
// the listening socket.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts connections")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// get sends a GET on c and reads the answer.
func get(t *testing.T, c net.Conn) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: orderflow\r\n\r\n"); err != nil {
		t.Fatalf("write the request: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(hangGuard))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the request sent to a draining server got no answer: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK || string(b) != "ok" {
		t.Fatalf("got %d %q, want 200 ok", res.StatusCode, b)
	}
	return res
}

func waitConn(t *testing.T, news <-chan net.Conn) {
	t.Helper()
	select {
	case <-news:
	case <-time.After(hangGuard):
		t.Fatal("the server never accepted the connection")
	}
}

func TestDrainAnswersTheFirstRequestOfAConnectionAcceptedBeforeItWhenItComesDuringIt(t *testing.T) {
	t.Parallel()
	srv, d, addr, news := drainServer(t, time.Minute)
	serve(t, srv, d)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	waitConn(t, news)

	// Shutdown alone would now close the connection once it reads the
	// request (net/http drops requests it reads after Shutdown began).
	done := drainThenShutdown(srv, d)
	waitRefused(t, addr)
	if res := get(t, c); !res.Close {
		t.Error("a response during the drain does not close its connection (Connection: close)")
	}
	if err := <-done; err != nil {
		t.Errorf("drain and shutdown: %v", err)
	}
}

func TestDrainAnswersARequestWhoseConnectionTheKernelQueuedBeforeItAndNobodyAccepted(t *testing.T) {
	t.Parallel()
	srv, d, addr, _ := drainServer(t, time.Minute)
	// Not served yet: the connection waits in the kernel's accept queue,
	// its request written.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: orderflow\r\n\r\n"); err != nil {
		t.Fatal(err)
	}

	// Closing the socket now would reset it (Shutdown does).
	done := drainThenShutdown(srv, d)
	waitRefused(t, addr)
	serve(t, srv, d)
	_ = c.SetReadDeadline(time.Now().Add(hangGuard))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the queued connection's request got no answer: %v", err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("got %d, want 200", res.StatusCode)
	}
	if err := <-done; err != nil {
		t.Errorf("drain and shutdown: %v", err)
	}
}

func TestDrainWaitsForAConnectionThatSendsNothingOnlyUntilItsHeaderTimeout(t *testing.T) {
	t.Parallel()
	srv, d, addr, news := drainServer(t, 100*time.Millisecond)
	serve(t, srv, d)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	waitConn(t, news)
	if err := <-drainThenShutdown(srv, d); err != nil {
		t.Errorf("drain and shutdown: %v", err)
	}
}

func TestDrainGivesUpWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	srv, d, addr, news := drainServer(t, time.Hour)
	serve(t, srv, d)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	waitConn(t, news)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Drain(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Drain with its context ended: %v, want context.Canceled", err)
	}
}
