package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway PostgreSQL cluster of one test: its own initdb in
// a temporary directory, on a free port, that the test stops and starts
// (the fault tests restart it under load). It is never the machine's shared
// server nor the project cluster other tests use. The binaries are the
// system's (/usr/lib/postgresql/<newest>/bin, as scripts/postgres.sh uses;
// `make test` installs them). initdb and postgres refuse to run as root, so
// under root they run as the `postgres` system user through runuser, like
// scripts/postgres.sh.
type Postgres struct {
	URL  string // postgres://postgres@127.0.0.1:port/postgres?sslmode=disable: a superuser, for testenv.NewOn
	Port int
	Bin  string // the server's bin directory (pg_dump, pg_restore, createdb live there too)
	dir  string // owned by the server's user: data/, log
	// paused are the processes Pause stopped (postgres_pause.go).
	paused []int
}

// StartPostgres creates and starts a cluster, stopped and removed when the
// test ends. Its settings keep the product's durability (fsync and
// synchronous commit on); only its size is small.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// Not t.TempDir: its parents are 0700 root, which the postgres user
	// cannot traverse.
	dir, err := os.MkdirTemp("", "orderflow-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &Postgres{Bin: bin, dir: dir}
	t.Cleanup(func() {
		_ = p.pgctl("stop", "-m", "immediate", "-w", "-t", "60")
		_ = os.RemoveAll(dir)
	})
	if err := p.chownToServer(dir); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if out, err := p.asServer(filepath.Join(bin, "initdb"), "-D", p.data(), "--auth=trust", "--username=postgres",
		"-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("testenv: initdb: %v\n%s", err, out)
	}
	addr := FreeAddr(t)
	p.Port, _ = strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 200
shared_buffers = 32MB
fsync = on
synchronous_commit = on
full_page_writes = on
timezone = 'UTC'
`, p.Port, dir)
	f, err := os.OpenFile(filepath.Join(p.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
	p.Start(t)
	return p
}

// Start starts the server and returns once it accepts connections (crash
// recovery included, after an immediate stop).
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	if err := p.pgctl("start", "-w", "-t", strconv.Itoa(int(Patience/time.Second)), "-l", filepath.Join(p.dir, "log")); err != nil {
		b, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		t.Fatalf("testenv: start postgres: %v\n%s", err, tail(string(b), 30))
	}
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, p.URL)
		if err == nil {
			_ = conn.Close(ctx)
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("testenv: postgres started but does not accept connections: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down in fast mode: open transactions are rolled
// back, sessions are disconnected, and new connections are refused until
// Start.
func (p *Postgres) Stop(t testing.TB) {
	t.Helper()
	if err := p.pgctl("stop", "-m", "fast", "-w", "-t", strconv.Itoa(int(Patience/time.Second))); err != nil {
		t.Fatalf("testenv: stop postgres: %v", err)
	}
}

// Restart is Stop then Start.
func (p *Postgres) Restart(t testing.TB) {
	t.Helper()
	p.Stop(t)
	p.Start(t)
}

// Tool returns the path of one of the server's client programs (pg_dump,
// pg_restore, psql, createdb).
func (p *Postgres) Tool(name string) string { return filepath.Join(p.Bin, name) }

func (p *Postgres) data() string { return filepath.Join(p.dir, "data") }

func (p *Postgres) pgctl(args ...string) error {
	out, err := p.asServer(filepath.Join(p.Bin, "pg_ctl"), append([]string{"-D", p.data()}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v: %s", args[0], err, out)
	}
	return nil
}

// serverUser is the user the server runs as: postgres under root, else the
// current user.
const serverUser = "postgres"

// asServer runs a server program as the server's user.
func (p *Postgres) asServer(path string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", serverUser, "--", path}, args...)...) // #nosec G204 -- test support: PostgreSQL's own tools, found in the system's directories
	} else {
		cmd = exec.Command(path, args...) // #nosec G204 -- test support: PostgreSQL's own tools, found in the system's directories
	}
	cmd.Dir = p.dir
	return cmd
}

func (p *Postgres) chownToServer(dir string) error {
	if os.Geteuid() != 0 {
		return os.Chmod(dir, 0o700) // #nosec G302 -- a directory: its owner must enter it (PostgreSQL requires 0700) // #nosec G302 -- a directory: its owner must enter it (PostgreSQL requires 0700)
	}
	u, err := user.Lookup(serverUser)
	if err != nil {
		return fmt.Errorf("running as root, PostgreSQL must run as the %q user, which does not exist (scripts/postgres.sh up, or apt-get install postgresql, creates it): %w", serverUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700) // #nosec G302 -- a directory: its owner must enter it (PostgreSQL requires 0700)
}

// postgresBin is the newest /usr/lib/postgresql/<major>/bin with a server.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var majors []int
	for _, d := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			majors = append(majors, v)
		}
	}
	if len(majors) == 0 {
		return "", fmt.Errorf("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: `make test` installs them (scripts/postgres.sh up), or apt-get install postgresql")
	}
	sort.Ints(majors)
	return fmt.Sprintf("/usr/lib/postgresql/%d/bin", majors[len(majors)-1]), nil
}
