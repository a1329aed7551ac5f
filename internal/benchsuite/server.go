package benchsuite

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// server is an `orderflow serve` child process on free local ports, with
// the embedded Kafka broker, its output going to a log file.
type server struct {
	URL    string // the public listener
	OpsURL string // the operations listener (/v1/projections, /readyz)
	cmd    *exec.Cmd
	done   chan error
	log    *os.File
}

// serverEnv are the variables startServer sets; the rest of the
// environment passes through (GOGC, ORDERFLOW_DB_MAX_CONNS, ...).
var serverEnv = []string{"DATABASE_URL", "ORDERFLOW_HTTP_ADDR", "ORDERFLOW_OPS_ADDR", "ORDERFLOW_ROLES", "ORDERFLOW_KAFKA_EMBEDDED_ADDR",
	"KAFKA_BROKERS", "ORDERFLOW_LOG_LEVEL", "ORDERFLOW_MIGRATE", "ORDERFLOW_RATE_COMMANDS", "ORDERFLOW_RATE_QUERIES", "ORDERFLOW_RATE_STREAM",
	"ORDERFLOW_AUTH_DEV", "ORDERFLOW_AUTH_DEV_DIR", "ORDERFLOW_AUTH_JWKS_URL", "ORDERFLOW_AUTH_KEY_FILES"}

// readyTimeout bounds the wait for /readyz after the start.
const readyTimeout = 90 * time.Second

// startServer runs binary serve on dbURL with roles and waits until it is
// ready. It trusts the development key in devDir (ORDERFLOW_AUTH_DEV):
// the load's tokens are signed with it. Its ports are chosen free at start, so several checkouts (and
// `make run`) on one machine do not collide.
func startServer(ctx context.Context, binary, dbURL, roles, devDir, logPath string) (*server, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	kafkaAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	opsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath) // #nosec G304 -- in the output directory the operator named
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "serve")
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(serverEnv, name) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DATABASE_URL="+dbURL, "ORDERFLOW_HTTP_ADDR="+httpAddr, "ORDERFLOW_ROLES="+roles,
		"ORDERFLOW_KAFKA_EMBEDDED_ADDR="+kafkaAddr, "KAFKA_BROKERS=", "ORDERFLOW_LOG_LEVEL=warn", "ORDERFLOW_MIGRATE=true",
		"ORDERFLOW_OPS_ADDR="+opsAddr,
		// One load generator is one client: the per-client rate limits
		// would measure 429s, not the pipeline.
		"ORDERFLOW_RATE_COMMANDS=0", "ORDERFLOW_RATE_QUERIES=0", "ORDERFLOW_RATE_STREAM=0",
		"ORDERFLOW_AUTH_DEV=true", "ORDERFLOW_AUTH_DEV_DIR="+devDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s serve: %w", binary, err)
	}
	s := &server{URL: "http://" + httpAddr, OpsURL: "http://" + opsAddr, cmd: cmd, done: make(chan error, 1), log: logf}
	go func() { s.done <- cmd.Wait() }()
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, fmt.Errorf("orderflow serve --roles %s: %w (log: %s)", roles, err, logPath)
	}
	return s, nil
}

func (s *server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("not ready within " + readyTimeout.String())
		}
	}
}

// stop asks the server to shut down (SIGTERM: it drains), and kills it if
// it has not within 30 s.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	_ = s.log.Close()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
