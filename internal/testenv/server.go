package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a running `orderflow serve` process.
type Server struct {
	URL       string // http://127.0.0.1:port (https:// when the test set ORDERFLOW_TLS_CERT_FILE)
	Addr      string // 127.0.0.1:port
	OpsURL    string // http://127.0.0.1:port of the operations listener
	OpsAddr   string
	KafkaAddr string // the embedded broker's address
	LogPath   string // the process's stderr and stdout
	cmd       *exec.Cmd
	exited    chan error
}

// Serve builds cmd/orderflow and runs `orderflow serve` on the environment's
// database with the embedded broker, on free ports, logging to a file in the
// test's temporary directory; env adds or overrides variables ("K=V"). It
// returns once the operations listener's /readyz answers 200. The process
// gets SIGTERM when the test ends (SIGKILL if it has not exited within
// Patience).
//
// The per-client rate limits are off (ORDERFLOW_RATE_*=0): every test client
// is 127.0.0.1, so one test's requests would throttle another's. A test of
// the limits sets them in env.
func (e *Env) Serve(t testing.TB, env ...string) *Server {
	t.Helper()
	bin := Binary(t)
	s := &Server{Addr: FreeAddr(t), OpsAddr: FreeAddr(t), KafkaAddr: FreeAddr(t), exited: make(chan error, 1)}
	s.URL, s.OpsURL = "http://"+s.Addr, "http://"+s.OpsAddr
	s.LogPath = filepath.Join(t.TempDir(), "server.log")
	logFile, err := os.Create(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "serve") // #nosec G204 -- test support: the binary this package just built
	s.cmd.Env = append(os.Environ(),
		"DATABASE_URL="+e.DB.URL,
		"ORDERFLOW_HTTP_ADDR="+s.Addr,
		"ORDERFLOW_OPS_ADDR="+s.OpsAddr,
		"ORDERFLOW_RATE_COMMANDS=0", "ORDERFLOW_RATE_QUERIES=0", "ORDERFLOW_RATE_STREAM=0",
		"ORDERFLOW_KAFKA_EMBEDDED_ADDR="+s.KafkaAddr,
		"KAFKA_BROKERS=",
		"ORDERFLOW_SHUTDOWN_TIMEOUT=5s",
	)
	s.cmd.Env = append(s.cmd.Env, env...)
	for _, kv := range env {
		if strings.HasPrefix(kv, "ORDERFLOW_TLS_CERT_FILE=") && kv != "ORDERFLOW_TLS_CERT_FILE=" {
			s.URL = "https://" + s.Addr
		}
	}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait(); _ = logFile.Close() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(Patience):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	if err := s.waitReady(); err != nil {
		s.Fatalf(t, "orderflow serve did not become ready: %v", err)
	}
	return s
}

// Fatalf fails the test with the message and the tail of the server's log.
func (s *Server) Fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	b, _ := os.ReadFile(s.LogPath)
	t.Fatalf(format+"\nserver log (%s):\n%s", append(args, s.LogPath, tail(string(b), 60))...)
}

func (s *Server) waitReady() error {
	deadline := time.Now().Add(Patience)
	last := errors.New("no answer yet")
	for time.Now().Before(deadline) {
		select {
		case err := <-s.exited:
			s.exited <- err
			return fmt.Errorf("the server exited: %v", err)
		default:
		}
		res, err := http.Get(s.OpsURL + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("/readyz: %d %s", res.StatusCode, b)
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// Binary builds cmd/orderflow into the test's temporary directory and
// returns its path. The build cache makes every build after the first a
// link.
func Binary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "orderflow")
	build := exec.Command("go", "build", "-o", bin, "./cmd/orderflow") // #nosec G204 -- test support: the path is in the test's temporary directory
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/orderflow: %v\n%s", err, out)
	}
	return bin
}

// moduleRoot is the directory of go.mod, found from this file's location.
func moduleRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: cannot locate the module")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
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
