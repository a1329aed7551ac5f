// Package pgtest gives each test its own fresh database with the whole
// schema (internal/schema) applied.
//
// It needs a server: DATABASE_URL (a role allowed to create databases and
// roles). `make test` starts a project-local cluster and sets it. Without one
// the test fails with a message saying so; it never skips.
//
// Migrating a database for every test would cost more than most tests. The
// schema is migrated once into a template database named after a hash of
// every migration file (orderflow_tpl_<hash>), and each test's database is a
// copy of it (CREATE DATABASE … TEMPLATE, a file copy). The template is
// built under a cluster-wide advisory lock, under a temporary name renamed
// when complete, so that test binaries running in parallel (one per package)
// build it once and never copy a half-migrated one. Templates of other
// hashes (other schemas) beyond the six newest are dropped when one is built.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/internal/migrate"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/schema"
)

// DB is a throwaway database.
type DB struct {
	URL   string        // owner's URL of the new database
	Owner *pgxpool.Pool // owner pool, for assertions and admin steps
	// One pool per serving role, with exactly that role's privileges: each
	// logs in with URL and switches to its role (pg.Login's development
	// fallback, which works on any server where DATABASE_URL may SET ROLE).
	// LoginAs gives a login of the production kind.
	Command, Relay, Projector, Query *pgxpool.Pool
	name                             string
}

// Login is the development login of role r to this database (the owner's
// URL, SET ROLE r), as components such as the relay take it.
func (db *DB) Login(r pg.Role) pg.Login { return pg.Login{Role: r, URL: db.URL, SetRole: true} }

// AdminURL returns the server URL tests use, or fails the test.
func AdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		t.Fatal("pgtest: DATABASE_URL is not set. Run `make test` (it starts a project-local PostgreSQL) " +
			"or point DATABASE_URL at a server where this role may CREATE DATABASE and CREATE ROLE.")
	}
	return u
}

// withDatabase returns the server URL admin with its database replaced.
func withDatabase(admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL must be a URL (postgres://...): %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// New creates a database from the migrated template and returns pools to it.
// The database is dropped when the test ends.
func New(t testing.TB) *DB {
	t.Helper()
	return NewOn(t, AdminURL(t))
}

// NewOn is New on the server of admin (a URL whose role may create
// databases and roles) instead of DATABASE_URL's: a test's own throwaway
// cluster (testenv.StartPostgres).
func NewOn(t testing.TB, admin string) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := "orderflow_test_" + randomHex(6)
	for attempt := 1; ; attempt++ {
		tpl := template(ctx, admin)
		if tpl.err != nil {
			t.Fatalf("pgtest: %v", tpl.err)
		}
		err := execAdmin(ctx, admin, "CREATE DATABASE "+name+" TEMPLATE "+tpl.name)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "3D000" && attempt < 3 {
			// A run of another checkout, with other migrations, built its
			// template and dropped this one as older: build it again.
			templates.CompareAndDelete(admin, tpl)
			continue
		}
		if err != nil {
			t.Fatalf("pgtest: create database: %v", err)
		}
		break
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := execAdmin(ctx, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})

	u, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	db := Open(t, u)
	db.name = name
	return db
}

// Open returns pools to an existing database at url (its owner's URL): the
// owner's and one per serving role. They are closed when the test ends.
func Open(t testing.TB, url string) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := &DB{URL: url}
	var err error
	if db.Owner, err = pg.ConnectOwner(ctx, db.URL, pg.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Owner.Close)
	for _, p := range []struct {
		pool *(*pgxpool.Pool)
		role pg.Role
		max  int32
	}{
		{&db.Command, pg.Command, 32}, {&db.Relay, pg.Relay, 8},
		{&db.Projector, pg.Projector, 16}, {&db.Query, pg.Query, 16},
	} {
		if *p.pool, err = pg.Connect(ctx, db.Login(p.role), pg.Options{MaxConns: p.max}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup((*p.pool).Close)
	}
	return db
}

// LoginAs creates a LOGIN role of its own for this database, a member of r
// with a random password, and returns its login: the production kind, no
// SET ROLE. The role is named after the database, so that parallel tests
// never share one, and dropped when the test ends. The password is in the
// returned URL only.
func (db *DB) LoginAs(t testing.TB, r pg.Role) pg.Login {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	user := db.name + "_" + strings.TrimPrefix(string(r), "orderflow_")
	password := randomHex(16)
	ident := pgx.Identifier{user}.Sanitize()
	// CREATE ROLE takes no parameters: the password is a quoted literal of
	// hex digits, which needs no escaping.
	if _, err := db.Owner.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE %s",
		ident, password, pgx.Identifier{string(r)}.Sanitize())); err != nil {
		t.Fatalf("pgtest: create login role for %s: %v", r, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := execAdmin(ctx, AdminURL(t), "DROP ROLE IF EXISTS "+ident); err != nil {
			t.Errorf("pgtest: drop login role %s: %v", user, err)
		}
	})
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return pg.Login{Role: r, URL: u.String()}
}

// templates remembers, per server, the template this process found or built.
var templates sync.Map // admin URL → *templateOnce

type templateOnce struct {
	once sync.Once
	name string
	err  error
}

// template returns (in name, or err) a complete template database for the
// current schema, building it if no process has.
func template(ctx context.Context, admin string) *templateOnce {
	v, _ := templates.LoadOrStore(admin, &templateOnce{})
	o := v.(*templateOnce)
	o.once.Do(func() { o.name, o.err = ensureTemplate(ctx, admin) })
	return o
}

// keptTemplates is how many schemas' templates a cluster keeps.
const keptTemplates = 6

// templateLock is the advisory lock key under which templates are built.
const templateLock = 7207745461657985100

func ensureTemplate(ctx context.Context, admin string) (string, error) {
	hash, err := schemaHash()
	if err != nil {
		return "", err
	}
	name := "orderflow_tpl_" + hash
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("cannot reach PostgreSQL at DATABASE_URL: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(templateLock)); err != nil {
		return "", err
	}
	defer func() { _, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(templateLock)) }()

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	// A build that died half-way left this behind; no one else builds now.
	building := name + "_building"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if err := migrateDB(ctx, admin, building); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
		return "", fmt.Errorf("complete template: %w", err)
	}
	// Older schemas' templates, all but the keptTemplates newest: checkouts
	// with other migrations (branches, worktrees) share a cluster and each
	// keeps its own. Best effort: another run may be copying one.
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'orderflow\_tpl\_%' AND datname <> $1
		ORDER BY oid DESC OFFSET $2`, name, keptTemplates-1)
	if err == nil {
		old, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, n := range old {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize())
		}
	}
	return name, nil
}

func migrateDB(ctx context.Context, admin, name string) error {
	u, err := withDatabase(admin, name)
	if err != nil {
		return err
	}
	sqlDB, err := pg.OpenSQL(u)
	if err != nil {
		return err
	}
	// Closed before the rename: a template must have no connections.
	defer func() { _ = sqlDB.Close() }()
	return migrate.Up(ctx, sqlDB, schema.Sets()...)
}

// schemaHash is a digest of every migration file of every set, in order.
func schemaHash() (string, error) {
	h := sha256.New()
	for _, s := range schema.Sets() {
		err := fs.WalkDir(s.FS, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(s.FS, path)
			if err != nil {
				return err
			}
			_, _ = fmt.Fprintf(h, "%s/%s %d\n", s.Name, path, len(b))
			_, _ = h.Write(b)
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("hash migrations %s: %w", s.Name, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func execAdmin(ctx context.Context, admin, sql string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("cannot reach PostgreSQL at DATABASE_URL: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Rows returns every row of each table as text, sorted, in one snapshot:
// comparing two read models row by row is comparing these. Times print in
// UTC so that the session's time zone cannot make equal rows differ.
func (db *DB) Rows(t testing.TB, tables ...string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := make(map[string][]string, len(tables))
	err := pgx.BeginFunc(ctx, db.Owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SET LOCAL TimeZone = 'UTC'"); err != nil {
			return err
		}
		for _, table := range tables {
			rows, err := tx.Query(ctx, `SELECT r::text FROM `+pgx.Identifier{table}.Sanitize()+` r ORDER BY r::text COLLATE "C"`)
			if err != nil {
				return err
			}
			if out[table], err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pgtest: dump %v: %v", tables, err)
	}
	return out
}

// DiffRows fails t with the first differences between two Rows dumps of the
// same tables (want and got), saying what was compared. It returns the
// number of rows that differ.
func DiffRows(t testing.TB, what string, want, got map[string][]string) int {
	t.Helper()
	differ := 0
	for _, table := range slices.Sorted(maps.Keys(want)) {
		w, g := want[table], got[table]
		if slices.Equal(w, g) {
			continue
		}
		inW, inG := make(map[string]bool, len(w)), make(map[string]bool, len(g))
		for _, r := range w {
			inW[r] = true
		}
		for _, r := range g {
			inG[r] = true
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s: table %s differs (%d rows wanted, %d got)", what, table, len(w), len(g))
		shown := 0
		for _, r := range w {
			if !inG[r] {
				differ++
				if shown < 5 {
					fmt.Fprintf(&b, "\n  only wanted: %s", r)
					shown++
				}
			}
		}
		for _, r := range g {
			if !inW[r] {
				differ++
				if shown < 10 {
					fmt.Fprintf(&b, "\n  only got:    %s", r)
					shown++
				}
			}
		}
		t.Error(b.String())
	}
	return differ
}
