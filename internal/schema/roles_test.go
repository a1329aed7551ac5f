package schema_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/schema"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
)

// The serving roles' privileges, checked against one list (allowed) in two
// ways: each role runs statements, logged in as production logs in (a
// LOGIN role of its own, no SET ROLE), and the catalog is read for every
// privilege each role holds. A migration that adds a table or a function
// either grants it as the list says or fails here.

// privileges maps an object to what a role may do with it. Tables are
// named as they are; functions as name(), every overload alike.
type privileges map[string][]string

// allowed is each serving role's list. Everything else is refused.
func allowed() map[pg.Role]privileges {
	read := []string{"SELECT"}
	write := []string{"SELECT", "INSERT", "UPDATE", "DELETE"}
	all := func(p privileges) privileges {
		// readiness reads every set's version table with the process's role
		for _, s := range schema.Sets() {
			p[s.VersionTable()] = read
		}
		return p
	}
	// Admin actions are recorded by the role that acts and read by the
	// query role; nobody rewrites the audit log.
	// Dead letters are parked and resolved, never deleted. The query role
	// opens personal data.
	projector := privileges{"events": read, "audit_log": {"INSERT"}, "projection_dead_letters": {"SELECT", "INSERT", "UPDATE"}}
	query := privileges{"events": read, "audit_log": read, "projection_dead_letters": read, "customer_keys": read}
	for _, t := range readModelTables() {
		projector[t], query[t] = write, read
	}
	return map[pg.Role]privileges{
		pg.Command: all(privileges{
			"events": read,
			// Request keys are stored only by the append functions; the
			// command role reads them and expires them.
			"append_keys":               {"SELECT", "DELETE"},
			"events_append()":           {"EXECUTE"},
			"events_append_batch()":     {"EXECUTE"},
			"events_append_keyed()":     {"EXECUTE"},
			"events_ensure_partition()": {"EXECUTE"},
			// Personal data: the command side makes and erases data keys
			// (internal/pii/DESIGN.md, Least privilege).
			"customer_keys":   {"SELECT", "INSERT", "DELETE"},
			"customer_orders": {"SELECT", "INSERT", "DELETE"},
			"audit_log":       {"INSERT"},
		}),
		pg.Relay: all(privileges{
			"events":            read,
			"relay_checkpoints": {"SELECT", "INSERT", "UPDATE"},
			// GET /v1/projections on relay nodes
			"projection_checkpoints": read,
			"projection_state":       read,
		}),
		pg.Projector: all(projector),
		pg.Query:     all(query),
	}
}

// readModelTables are every projection's tables, its <name>_versions table
// and the runtime's bookkeeping.
func readModelTables() []string {
	out := []string{"projection_checkpoints", "projection_state"}
	for _, p := range projections.All() {
		out = append(out, p.Name()+"_versions")
		out = append(out, p.Tables()...)
	}
	return out
}

func (p privileges) may(object, privilege string) bool { return slices.Contains(p[object], privilege) }

// logins gives each serving role a pool on a LOGIN role of its own.
func logins(t *testing.T, db *pgtest.DB) map[pg.Role]*pgxpool.Pool {
	t.Helper()
	out := map[pg.Role]*pgxpool.Pool{}
	for _, r := range pg.ServingRoles() {
		pool, err := pg.Connect(context.Background(), db.LoginAs(t, r), pg.Options{MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		out[r] = pool
	}
	return out
}

// statement is one thing a role may or must not do.
type statement struct {
	name string
	sql  string
	// may lists the roles for which it succeeds; every other serving role
	// is refused with insufficient_privilege.
	may []pg.Role
}

func TestEachRoleCanDoOnlyWhatItMust(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	store := eventstore.New(db.Command)
	if err := store.EnsureAhead(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	existing := eventstore.Stream{ID: ulid.Make(), Type: "test"}
	if _, err := store.Append(ctx, existing, eventstore.NoStream(), []eventstore.EventData{{ID: ulid.Make(), Type: "Tested", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	var owner string
	if err := db.Owner.QueryRow(ctx, `SELECT current_user`).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	partition := "events_y" + time.Now().UTC().Format("2006m01")
	stream, event := uuidOf(ulid.Make()), uuidOf(ulid.Make())
	all := pg.ServingRoles()
	none := []pg.Role(nil)
	thisMonth := `date_trunc('month', now() AT TIME ZONE 'UTC')::date`

	statements := []statement{
		{"append to a stream with events_append",
			fmt.Sprintf(`SELECT outcome FROM events_append('%s', 'test', -1, ARRAY['%s'::uuid], ARRAY['Tested'], ARRAY[1],
				ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])`, stream, event), []pg.Role{pg.Command}},
		{"append to a stream with events_append_batch",
			fmt.Sprintf(`SELECT outcome FROM events_append_batch(ARRAY['%s'::uuid], ARRAY[1], ARRAY['test'], ARRAY[-1::bigint], ARRAY[1],
				ARRAY['%s'::uuid], ARRAY['Tested'], ARRAY[1], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])`, stream, event), []pg.Role{pg.Command}},
		{"insert an event row directly, bypassing the append functions",
			fmt.Sprintf(`INSERT INTO events (stream_id, version, event_id, stream_type, event_type, data)
				VALUES ('%s', 1, '%s', 'test', 'Tested', '{}')`, stream, event), none},
		{"insert an event row into this month's partition directly",
			fmt.Sprintf(`INSERT INTO %s (stream_id, version, event_id, stream_type, event_type, data)
				VALUES ('%s', 1, '%s', 'test', 'Tested', '{}')`, partition, stream, event), none},
		{"change a stored event", `UPDATE events SET data = '{"forged": true}'`, none},
		{"delete a stored event", `DELETE FROM events`, none},
		{"truncate the events", `TRUNCATE events`, none},
		{"truncate this month's partition", `TRUNCATE ` + partition, none},
		{"draw a position from the events' sequence", `SELECT nextval('events_position_seq')`, none},

		{"create this month's partition", `SELECT events_ensure_partition(` + thisMonth + `)`, []pg.Role{pg.Command}},
		{"create last month's partition", `SELECT events_ensure_partition((` + thisMonth + ` - interval '1 month')::date)`, []pg.Role{pg.Command}},
		{"create the partition twelve months ahead", `SELECT events_ensure_partition((` + thisMonth + ` + interval '12 months')::date)`, []pg.Role{pg.Command}},
		{"create a partition thirteen months ahead", `SELECT events_ensure_partition((` + thisMonth + ` + interval '13 months')::date)`, none},
		{"create a partition ten years ahead", `SELECT events_ensure_partition((` + thisMonth + ` + interval '10 years')::date)`, none},
		{"create a partition two months back", `SELECT events_ensure_partition((` + thisMonth + ` - interval '2 months')::date)`, none},
		{"create a partition of any month with the owner's function", `SELECT events_create_partition('2001-01-01')`, none},
		{"call the partition bound helper", `SELECT events_ulid_floor('2001-01-01')`, none},

		{"append with a request key with events_append_keyed",
			fmt.Sprintf(`SELECT outcome FROM events_append_keyed('%s', 'test', -1, ARRAY['%s'::uuid], ARRAY['Tested'], ARRAY[1],
				ARRAY['{}'], ARRAY['{}'], 'scope', 'key', '\x00')`, stream, event), []pg.Role{pg.Command}},
		{"append with a request key with events_append_batch",
			fmt.Sprintf(`SELECT outcome FROM events_append_batch(ARRAY['%s'::uuid], ARRAY[1], ARRAY['test'], ARRAY[-1::bigint], ARRAY[1],
				ARRAY['%s'::uuid], ARRAY['Tested'], ARRAY[1], ARRAY['{}'], ARRAY['{}'], ARRAY['scope'], ARRAY['key'], ARRAY[1], ARRAY['\x00'::bytea])`, stream, event), []pg.Role{pg.Command}},
		{"store a request key without its events", fmt.Sprintf(`INSERT INTO append_keys (scope, key, fingerprint, stream_id, from_version, to_version, position)
			VALUES ('s', 'k', '\x00', '%s', 1, 1, 1)`, stream), none},
		{"read the request keys", `SELECT key, position FROM append_keys`, []pg.Role{pg.Command}},
		{"expire request keys", `DELETE FROM append_keys WHERE created_at < now()`, []pg.Role{pg.Command}},
		{"rewrite a stored key's result", `UPDATE append_keys SET position = 0`, none},

		{"move the relay checkpoint", `INSERT INTO relay_checkpoints (name, position) VALUES ('t', 0)
			ON CONFLICT (name) DO UPDATE SET position = excluded.position`, []pg.Role{pg.Relay}},
		{"delete the relay checkpoint", `DELETE FROM relay_checkpoints`, none},
		{"write a read-model row", `INSERT INTO status_counts (status, orders) VALUES ('draft', 1)
			ON CONFLICT (status) DO UPDATE SET orders = status_counts.orders + 1`, []pg.Role{pg.Projector}},
		{"record a projection checkpoint", `INSERT INTO projection_checkpoints (projection, partition, position, recorded_at)
			VALUES ('p', 0, 1, now())`, []pg.Role{pg.Projector}},
		{"read a read model", `SELECT order_id, customer_id FROM order_summaries`, []pg.Role{pg.Projector, pg.Query}},
		{"read a projection's progress", `SELECT position FROM projection_checkpoints`, []pg.Role{pg.Relay, pg.Projector, pg.Query}},
		{"read the events", `SELECT stream_id, data FROM events`, all},
		{"make a data key", `INSERT INTO customer_keys (key_id, customer_id, master_key_id, wrapped)
			VALUES ('` + stream + `', 'c', 'm', '\x00')`, []pg.Role{pg.Command}},
		{"read the data keys", `SELECT wrapped FROM customer_keys`, []pg.Role{pg.Command, pg.Query}},
		{"erase a data key", `DELETE FROM customer_keys WHERE customer_id = 'c'`, []pg.Role{pg.Command}},
		{"re-wrap a data key", `UPDATE customer_keys SET wrapped = '\x01'`, none},
		{"note an order's personal data", `INSERT INTO customer_orders (order_id, customer_id) VALUES ('` + stream + `', 'c')`, []pg.Role{pg.Command}},
		{"record an admin action", `INSERT INTO audit_log (actor, action, target, reason) VALUES ('a', 'test', 't', '')`,
			[]pg.Role{pg.Command, pg.Projector}},
		{"read the audit log", `SELECT actor, db_user FROM audit_log`, []pg.Role{pg.Query}},
		{"park a dead letter", `INSERT INTO projection_dead_letters (projection, envelope, reason) VALUES ('p', '\x00', 'r')`,
			[]pg.Role{pg.Projector}},
		{"list the dead letters", `SELECT id, reason FROM projection_dead_letters`, []pg.Role{pg.Projector, pg.Query}},
		{"delete a dead letter", `DELETE FROM projection_dead_letters`, none},
		{"rewrite an audit entry", `UPDATE audit_log SET actor = 'someone else'`, none},
		{"delete audit entries", `DELETE FROM audit_log`, none},
		{"record an admin action as another database login", `INSERT INTO audit_log (actor, db_user, action, target, reason)
			VALUES ('a', 'someone else', 'test', 't', '')`, none},

		{"create a table", `CREATE TABLE public.intruder (i int)`, none},
		{"create a schema", `CREATE SCHEMA intruder`, none},
		{"create a function", `CREATE FUNCTION public.intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'`, none},
		{"add a column to the events", `ALTER TABLE events ADD COLUMN intruder int`, none},
		{"disable the append-only trigger", `ALTER TABLE events DISABLE TRIGGER events_append_only`, none},
		{"create a trigger on the events", `CREATE TRIGGER intruder BEFORE INSERT ON events
			FOR EACH STATEMENT EXECUTE FUNCTION events_append_lock()`, none},
		{"index the events", `CREATE INDEX intruder ON events (event_type)`, none},
		{"detach a partition", `ALTER TABLE events DETACH PARTITION ` + partition, none},
		{"drop a read model", `DROP TABLE order_lines`, none},
		{"replace the append-lock trigger function", `CREATE OR REPLACE FUNCTION events_append_lock() RETURNS trigger
			LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'`, none},
		{"skip every trigger with session_replication_role", `SET session_replication_role = replica`, none},
		{"become the schema owner", `SET ROLE ` + pgx.Identifier{owner}.Sanitize(), none},
	}
	// Every privilege on every table of the list, as zero-row statements:
	// what the catalog says each role holds is what it can do.
	tables := []string{"events", partition, "append_keys", "relay_checkpoints"}
	tables = append(tables, readModelTables()...)
	for _, s := range schema.Sets() {
		tables = append(tables, s.VersionTable())
	}
	list := allowed()
	for _, table := range tables {
		var column string
		if err := db.Owner.QueryRow(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum = 1`, table).Scan(&column); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		tbl, col := pgx.Identifier{table}.Sanitize(), pgx.Identifier{column}.Sanitize()
		for _, p := range []struct{ privilege, sql string }{
			{"SELECT", `SELECT FROM ` + tbl + ` LIMIT 1`},
			{"INSERT", `INSERT INTO ` + tbl + ` SELECT (NULL::` + tbl + `).* WHERE false`},
			{"UPDATE", `UPDATE ` + tbl + ` SET ` + col + ` = DEFAULT WHERE false`},
			{"DELETE", `DELETE FROM ` + tbl + ` WHERE false`},
			{"TRUNCATE", `TRUNCATE ` + tbl},
		} {
			var may []pg.Role
			for _, r := range all {
				if list[r].may(table, p.privilege) {
					may = append(may, r)
				}
			}
			statements = append(statements, statement{p.privilege + " on " + table, p.sql, may})
		}
	}

	pools := logins(t, db)
	for _, r := range all {
		for _, s := range statements {
			t.Run(fmt.Sprintf("%s: %s", r, s.name), func(t *testing.T) {
				err := tryRolledBack(ctx, pools[r], s.sql)
				if slices.Contains(s.may, r) {
					if err != nil {
						t.Fatalf("must succeed, failed: %v\n%s", err, s.sql)
					}
					return
				}
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
					t.Fatalf("must be refused with insufficient_privilege (42501), got %v\n%s", err, s.sql)
				}
			})
		}
	}

	t.Run("the command role is told why a month far ahead is refused", func(t *testing.T) {
		err := tryRolledBack(ctx, pools[pg.Command], `SELECT events_ensure_partition((`+thisMonth+` + interval '13 months')::date)`)
		if err == nil || !strings.Contains(err.Error(), "outside") {
			t.Fatalf("want an error naming the allowed months, got %v", err)
		}
		if _, err := eventstore.New(pools[pg.Command]).EnsurePartitions(ctx, time.Now().AddDate(0, 13, 0), time.Now().AddDate(0, 13, 0)); err == nil {
			t.Fatal("Store.EnsurePartitions thirteen months ahead succeeded")
		}
	})
	t.Run("the owner creates partitions of any month", func(t *testing.T) {
		past := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
		names, err := eventstore.New(db.Owner).CreatePartitions(ctx, past, past)
		if err != nil || len(names) != 1 || names[0] != "events_y2001m01" {
			t.Fatalf("CreatePartitions: %v %v", names, err)
		}
	})
}

// tryRolledBack runs sql in a transaction that is rolled back, so that a
// statement that succeeds leaves nothing behind for the next.
func tryRolledBack(ctx context.Context, pool *pgxpool.Pool, sql string) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

func TestNoRoleHoldsAPrivilegeOutsideItsList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	store := eventstore.New(db.Command)
	if err := store.EnsureAhead(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	audit(t, db)

	// A rebuild swaps in tables it created: they must carry the same
	// grants, copied from the live ones.
	rt, err := projections.NewRuntime(db.Projector, eventstore.New(db.Projector), order.NewRegistry(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RebuildAll(ctx, db.Owner, projections.All(), nil); err != nil {
		t.Fatal(err)
	}
	t.Run("after a rebuild of every projection", func(t *testing.T) { audit(t, db) })
}

// audit compares what the catalog says each serving role may do with the
// list, in both directions.
func audit(t *testing.T, db *pgtest.DB) {
	t.Helper()
	ctx := context.Background()
	list := allowed()
	for _, r := range pg.ServingRoles() {
		rows, err := db.Owner.Query(ctx, `
			SELECT c.relname::text, p.priv
			  FROM pg_class c
			 CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p(priv)
			 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
			   AND CASE WHEN p.priv IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
			            THEN has_any_column_privilege($1::name, c.oid, p.priv)
			            ELSE has_table_privilege($1::name, c.oid, p.priv) END
			UNION ALL
			SELECT c.relname::text, p.priv
			  FROM pg_class c CROSS JOIN unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) AS p(priv)
			 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
			   AND has_sequence_privilege($1::name, c.oid, p.priv)
			UNION ALL
			SELECT f.proname || '()', 'EXECUTE'
			  FROM pg_proc f
			 WHERE f.pronamespace = 'public'::regnamespace
			   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = f.oid AND d.deptype = 'e')
			   AND has_function_privilege($1::name, f.oid, 'EXECUTE')
			UNION ALL
			SELECT 'schema ' || n.nspname, p.priv
			  FROM pg_namespace n CROSS JOIN unnest(ARRAY['CREATE', 'USAGE']) AS p(priv)
			 WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
			   AND NOT (n.nspname = 'public' AND p.priv = 'USAGE')
			   AND has_schema_privilege($1::name, n.oid, p.priv)
			UNION ALL
			SELECT 'database', 'CREATE' WHERE has_database_privilege($1::name, current_database(), 'CREATE')`, string(r))
		if err != nil {
			t.Fatal(err)
		}
		held, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
			var object, privilege string
			err := row.Scan(&object, &privilege)
			return object + " " + privilege, err
		})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for object, ps := range list[r] {
			for _, p := range ps {
				want = append(want, object+" "+p)
			}
		}
		sort.Strings(held)
		sort.Strings(want)
		for _, h := range held {
			if !slices.Contains(want, h) {
				t.Errorf("%s holds %s, which is not in its list", r, h)
			}
		}
		for _, w := range want {
			if !slices.Contains(held, w) {
				t.Errorf("%s lacks %s, which its list gives it", r, w)
			}
		}
	}

	// The group roles carry privileges only: no login, no attribute that
	// outranks a grant, no membership in another role.
	rows, err := db.Owner.Query(ctx, `
		SELECT r.rolname::text FROM pg_roles r
		 WHERE r.rolname = ANY($1)
		   AND (r.rolcanlogin OR r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolbypassrls OR r.rolreplication
		        OR EXISTS (SELECT FROM pg_auth_members m WHERE m.member = r.oid))`, roleNames())
	if err != nil {
		t.Fatal(err)
	}
	bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("group role %s may log in, has an attribute beyond its grants, or is a member of another role", b)
	}
}

func roleNames() []string {
	var out []string
	for _, r := range pg.ServingRoles() {
		out = append(out, string(r))
	}
	return out
}

func TestEveryFunctionPinsItsSearchPathAndIsGrantedByName(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rows, err := db.Owner.Query(context.Background(), `
		SELECT f.oid::regprocedure::text,
		       coalesce((SELECT substr(c, length('search_path=') + 1) FROM unnest(f.proconfig) AS c
		                  WHERE c LIKE 'search_path=%'), ''),
		       has_function_privilege('public'::name, f.oid, 'EXECUTE')
		  FROM pg_proc f
		 WHERE f.pronamespace = 'public'::regnamespace
		   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = f.oid AND d.deptype = 'e')
		 ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	type function struct {
		name, path string
		public     bool
	}
	fns, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (function, error) {
		var f function
		err := row.Scan(&f.name, &f.path, &f.public)
		return f, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) == 0 {
		t.Fatal("no functions found: the query is wrong")
	}
	for _, f := range fns {
		parts := strings.Split(f.path, ",")
		if last := strings.TrimSpace(parts[len(parts)-1]); f.path == "" || last != "pg_temp" {
			t.Errorf("%s: search_path %q; every function says SET search_path = public, pg_temp (pg_temp last)", f.name, f.path)
		}
		if f.public {
			t.Errorf("%s: executable by PUBLIC; grant EXECUTE by name to the roles that call it", f.name)
		}
	}
}

func uuidOf(id ulid.ULID) string {
	var u [16]byte = id
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
