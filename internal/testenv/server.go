package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/streams/envelope"
)

// Server is a running `orderflow serve` process.
type Server struct {
	*Process
	URL       string // http://127.0.0.1:port (https:// when the test set ORDERFLOW_TLS_CERT_FILE)
	Addr      string // 127.0.0.1:port
	OpsURL    string // http://127.0.0.1:port of the operations listener
	OpsAddr   string
	KafkaAddr string // the embedded broker's address
}

// Serve builds cmd/orderflow and runs `orderflow serve` on the environment's
// database with the embedded broker, on free ports, logging to a file in the
// test's temporary directory; env adds or overrides variables ("K=V"). It
// returns once the operations listener's /readyz answers 200. It signs and
// verifies the events topic with the test's key (EventKey), and wraps
// personal data's keys with the test's master key (MasterKey), so every
// serve process of a test, and its in-process components, agree. The process
// gets SIGTERM when the test ends (SIGKILL if it has not exited within
// Patience).
//
// The binary accepts the tokens Token mints (authEnv): send one with every
// request that is not public (Operator, Bearer).
//
// The per-client rate limits are off (ORDERFLOW_RATE_*=0): every test client
// is 127.0.0.1, so one test's requests would throttle another's. A test of
// the limits sets them in env.
func (e *Env) Serve(t testing.TB, env ...string) *Server {
	t.Helper()
	return ServeDB(t, e.DB.URL, env...)
}

// ServeDB is Serve on any database URL. Serve processes of one test get
// distinct names (serve, serve-2, …) and so distinct logs.
func ServeDB(t testing.TB, databaseURL string, env ...string) *Server {
	t.Helper()
	s := &Server{Addr: FreeAddr(t), OpsAddr: FreeAddr(t), KafkaAddr: FreeAddr(t)}
	s.URL, s.OpsURL = "http://"+s.Addr, "http://"+s.OpsAddr
	for _, kv := range env {
		if strings.HasPrefix(kv, "ORDERFLOW_TLS_CERT_FILE=") && kv != "ORDERFLOW_TLS_CERT_FILE=" {
			s.URL = "https://" + s.Addr
		}
	}
	s.Process = NewProcess(t, processName(t, "serve"), Binary(t), append([]string{
		"DATABASE_URL=" + databaseURL,
		"ORDERFLOW_HTTP_ADDR=" + s.Addr,
		"ORDERFLOW_OPS_ADDR=" + s.OpsAddr,
		"ORDERFLOW_RATE_COMMANDS=0", "ORDERFLOW_RATE_QUERIES=0", "ORDERFLOW_RATE_STREAM=0",
		"ORDERFLOW_KAFKA_EMBEDDED_ADDR=" + s.KafkaAddr,
		"KAFKA_BROKERS=",
		"ORDERFLOW_SHUTDOWN_TIMEOUT=5s",
		SigningKeysVar + "=" + envelope.EncodeKeys(EventKey(t)),
		MasterKeysVar + "=" + MasterKey(t),
	}, append(authEnv(t), env...)...), "serve")
	s.Restart(t)
	return s
}

// Restart starts the process again (after Kill or Terminate) on the same
// addresses and returns once /readyz answers 200.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Start(t)
	if err := s.waitReady(); err != nil {
		s.Fatalf(t, "orderflow serve did not become ready: %v", err)
	}
}

// Fatalf fails the test with the message and the tail of the server's log.
func (s *Server) Fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf(format+"\n%s", append(args, s.LogTail(60))...)
}

func (s *Server) waitReady() error {
	deadline := time.Now().Add(Patience)
	last := errors.New("no answer yet")
	for time.Now().Before(deadline) {
		if err, exited := s.Exited(); exited {
			return fmt.Errorf("the server exited: %v", err)
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

// processName returns base, or base-N for the N-th process of that name in
// this test.
func processName(t testing.TB, base string) string {
	names.Lock()
	defer names.Unlock()
	key := t.Name() + "/" + base
	names.n[key]++
	if n := names.n[key]; n > 1 {
		return fmt.Sprintf("%s-%d", base, n)
	}
	return base
}

var names = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// Binary builds cmd/orderflow into the test's temporary directory and
// returns its path; later calls of the same test reuse that build. The build
// cache makes every build after the first a link.
func Binary(t testing.TB) string {
	t.Helper()
	binaries.Lock()
	defer binaries.Unlock()
	if bin, ok := binaries.path[t.Name()]; ok {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "orderflow")
	build := exec.Command("go", "build", "-o", bin, "./cmd/orderflow") // #nosec G204 -- test support: the path is in the test's temporary directory
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/orderflow: %v\n%s", err, out)
	}
	binaries.path[t.Name()] = bin
	name := t.Name()
	t.Cleanup(func() {
		binaries.Lock()
		delete(binaries.path, name)
		binaries.Unlock()
	})
	return bin
}

var binaries = struct {
	sync.Mutex
	path map[string]string // test name → its build
}{path: map[string]string{}}

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
