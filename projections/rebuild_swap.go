package projections

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/eventstore"
)

// finishShadow gives the shadow tables the live tables' keys, indexes and
// grants, under the live names, so that after the swap a later migration
// finds the names it expects and every role keeps exactly the privileges
// the migrations gave it (the grants are copied, never restated here).
// Only the owner touches the shadow schema itself.
func finishShadow(ctx context.Context, owner *pgxpool.Pool, shadow string, tables []string) error {
	for _, t := range tables {
		rows, err := owner.Query(ctx, `
			SELECT format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', $2::text, $1::text, conname, pg_get_constraintdef(oid))
			  FROM pg_constraint WHERE conrelid = format('public.%I', $1::text)::regclass AND contype IN ('p', 'u')
			UNION ALL
			SELECT replace(indexdef, ' ON public.', format(' ON %I.', $2::text))
			  FROM pg_indexes i WHERE schemaname = 'public' AND tablename = $1
			   AND NOT EXISTS (SELECT FROM pg_constraint c
			                   WHERE c.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass)
			UNION ALL
			SELECT format('GRANT %s ON %I.%I TO %s', a.privilege_type, $2::text, $1::text,
			              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END)
			  FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
			  LEFT JOIN pg_roles r ON r.oid = a.grantee
			 WHERE c.oid = format('public.%I', $1::text)::regclass AND a.grantee <> c.relowner`, t, shadow)
		if err != nil {
			return err
		}
		stmts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if _, err := owner.Exec(ctx, strings.Join(stmts, ";\n")+";"); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	return nil
}

// catchUpBatch is how many events one catch-up transaction applies.
const catchUpBatch = 1000

// catchUp applies up to catchUpBatch events after "after" to the shadow
// tables through the live apply path, in one transaction.
func (r *Runtime) catchUp(ctx context.Context, owner *pgxpool.Pool, p Projection, shadow string, after int64, st *RebuildStats) (int64, int64, error) {
	evs, err := r.store.ReadAll(ctx, after, catchUpBatch)
	if err != nil || len(evs) == 0 {
		return 0, after, err
	}
	err = pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
		return r.applyShadow(ctx, tx, p, shadow, evs, st)
	})
	if err != nil {
		return 0, after, err
	}
	return int64(len(evs)), evs[len(evs)-1].Position, nil
}

// applyShadow applies evs to the shadow tables as one batch of the live
// path. An event no code can decode is counted and left out, as the load
// leaves it out (the live projector dead-letters it), and so is every later
// event of its order.
func (r *Runtime) applyShadow(ctx context.Context, tx pgx.Tx, p Projection, shadow string, evs []eventstore.RecordedEvent, st *RebuildStats) error {
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = "+shadow+", public"); err != nil {
		return err
	}
	ds := make([]Delivery, len(evs))
	for i, ev := range evs {
		ds[i] = Delivery{Event: ev, Partition: noCheckpoint}
	}
	out, err := r.applyBatch(ctx, tx, p, ds)
	if err != nil {
		return err
	}
	cut := map[ulid.ULID]bool{}
	for _, rj := range out.rejected {
		ev := evs[rj.Index]
		if !cut[ev.StreamID] {
			cut[ev.StreamID] = true
			st.Undecodable++
			r.log.Warn("rebuild catch-up: order stops at an undecodable event", "projection", p.Name(), "order", ev.StreamID.String(), "err", rj.Err)
		}
	}
	_, err = tx.Exec(ctx, "SET LOCAL search_path = public")
	return err
}

// swap finishes the catch-up under the live tables' locks and exchanges the
// tables.
func (r *Runtime) swap(ctx context.Context, owner *pgxpool.Pool, p Projection, shadow string, tables []string, after int64, st *RebuildStats) error {
	return pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '10s'"); err != nil {
			return err
		}
		live := make([]string, len(tables))
		for i, t := range tables {
			live[i] = "public." + t
		}
		// Versions table first, then the model's tables in Apply's order:
		// the live projector takes them in this order too.
		if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(live, ", ")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return err
		}
		for {
			evs, err := r.store.ReadAll(ctx, after, catchUpBatch)
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				break
			}
			if err := r.applyShadow(ctx, tx, p, shadow, evs, st); err != nil {
				return err
			}
			st.CaughtUp += int64(len(evs))
			after = evs[len(evs)-1].Position
		}
		retired := "retired_" + p.Name()
		ddl := fmt.Sprintf("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s;", retired, retired)
		for _, t := range tables {
			ddl += fmt.Sprintf("ALTER TABLE public.%s SET SCHEMA %s; ALTER TABLE %s.%s SET SCHEMA public;", t, retired, shadow, t)
		}
		ddl += fmt.Sprintf("DROP SCHEMA %s CASCADE; DROP SCHEMA %s;", retired, shadow)
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return err
		}
		return setState(ctx, tx, p.Name(), "running", fmt.Sprintf("rebuilt up to position %d", after))
	})
}
