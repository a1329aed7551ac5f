-- +goose Up
-- Least privilege: one NOLOGIN group role per serving component, holding
-- that component's privileges and nothing else. Operators create the LOGIN
-- roles, each with its own credentials, and grant each one its group
-- (README, "Database roles"). Privileges live here, versioned and tested
-- (internal/schema/roles_test.go); credentials stay with the operator.
--
--   orderflow_command    calls the append functions, reads events, keeps
--                        partitions near now, uses its idempotency keys
--   orderflow_relay      reads events, writes its checkpoint
--   orderflow_projector  reads events (gap fill), writes read models and
--                        their checkpoints
--   orderflow_query      reads read models and events
--
-- The rule for every later migration: a new function says
-- SET search_path = public, pg_temp and is granted EXECUTE by name to the
-- roles that call it (no one else may: see ALTER DEFAULT PRIVILEGES below);
-- a new table is granted, privilege by privilege, to the roles that use it.
-- The roles test fails on a function without a pinned search_path and on
-- any privilege of a serving role that is not in its list.
--
-- Roles are cluster-wide. A role that exists is left alone, so a DBA may
-- create the four beforehand and the migrating role then needs no
-- CREATEROLE. Databases migrated at the same time (tests, or several
-- environments on one server) race to create them, hence the exception;
-- the roles are created in the same order everywhere, so two such
-- migrations cannot deadlock on each other's uncommitted roles.
-- +goose StatementBegin
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['orderflow_command', 'orderflow_relay', 'orderflow_projector', 'orderflow_query'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- The first migrations' single application role, orderflow_app, could
-- INSERT into events directly and do every component's work. It keeps no
-- privilege in this database. The role itself stays: it is cluster-wide and
-- other databases on the server may still use it.
REVOKE ALL ON events FROM orderflow_app;
REVOKE ALL ON SEQUENCE events_position_seq FROM orderflow_app;

-- Functions are executable by PUBLIC unless revoked. From here on nobody
-- but the owner may execute a function the migrations create until a
-- migration grants it by name.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
REVOKE ALL ON FUNCTION events_append_lock(), events_reject_change(), events_ulid_floor(date),
    events_ensure_partition(date),
    events_append(uuid, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[]),
    events_append_batch(uuid[], integer[], text[], bigint[], integer[], uuid[], text[], integer[], jsonb[], jsonb[])
    FROM PUBLIC, orderflow_app;

-- PostgreSQL 15 no longer lets PUBLIC create in schema public; older
-- servers do. Nothing but the owner creates objects here. (A warning, not
-- an error, where the migrating role does not own the schema.)
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- The append functions become the only write path: SECURITY DEFINER, so
-- that they insert with the owner's rights while the command role has no
-- INSERT on events. A definer function must not resolve names through a
-- schema its caller controls: search_path is pinned, pg_temp last (an
-- unpinned or leading pg_temp would let a caller's temporary table or
-- function stand in for events or an operator).
ALTER FUNCTION events_append(uuid, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[])
    SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION events_append_batch(uuid[], integer[], text[], bigint[], integer[], uuid[], text[], integer[], jsonb[], jsonb[])
    SECURITY DEFINER SET search_path = public, pg_temp;
-- Not definer, but pinned all the same: one rule for every function.
ALTER FUNCTION events_append_lock() SET search_path = public, pg_temp;
ALTER FUNCTION events_reject_change() SET search_path = public, pg_temp;
ALTER FUNCTION events_ulid_floor(date) SET search_path = public, pg_temp;

-- Creates the partition of any month: the owner's tool (loading history,
-- restores, tests of old months). Not executable by any serving role.
-- +goose StatementBegin
CREATE FUNCTION events_create_partition(month date) RETURNS text
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    lo   date := date_trunc('month', month)::date;
    hi   date := (date_trunc('month', month) + interval '1 month')::date;
    name text := format('events_y%sm%s', to_char(lo, 'YYYY'), to_char(lo, 'MM'));
BEGIN
    IF month IS NULL THEN
        RAISE EXCEPTION 'events_create_partition: month is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                   name, events_ulid_floor(lo), events_ulid_floor(hi));
    -- Each partition carries the statement triggers too, so that even a
    -- direct insert into a partition (only the owner could) takes the
    -- append lock.
    EXECUTE format('CREATE TRIGGER events_append_lock BEFORE INSERT ON %I
                    FOR EACH STATEMENT EXECUTE FUNCTION events_append_lock()', name);
    EXECUTE format('CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON %I
                    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change()', name);
    RETURN name;
END
$$;
-- +goose StatementEnd

-- What the command role may create: the partitions of months near now.
-- Serving processes keep the current month and eventstore.PartitionsAhead
-- (3) months ready. One month back: the caller's clock decides "now's
-- month", and near the first of a month its clock may be behind the
-- server's. Twelve ahead: room to raise PartitionsAhead without a
-- migration. Nothing further: every partition is a table in every plan over
-- events, so a compromised or buggy serving role must not be able to create
-- hundreds, nor open far-future ranges that would accept stream ids minted
-- with a forged time. Other months are the owner's job
-- (events_create_partition, Store.CreatePartitions).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION events_ensure_partition(month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cur      date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    earliest date := (cur - interval '1 month')::date;
    latest   date := (cur + interval '12 months')::date;
    m        date := date_trunc('month', month)::date;
BEGIN
    IF m IS NULL OR m < earliest OR m > latest THEN
        RAISE EXCEPTION 'events_ensure_partition: month % is outside % to %, the months a serving role may create',
                coalesce(to_char(m, 'YYYY-MM'), 'NULL'), to_char(earliest, 'YYYY-MM'), to_char(latest, 'YYYY-MM')
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The schema owner creates partitions of other months with events_create_partition(month).';
    END IF;
    RETURN events_create_partition(m);
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION events_create_partition(date) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    events_append(uuid, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[]),
    events_append_batch(uuid[], integer[], text[], bigint[], integer[], uuid[], text[], integer[], jsonb[], jsonb[]),
    events_ensure_partition(date)
    TO orderflow_command;
GRANT SELECT ON events TO orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;

-- Readiness (/readyz "migrations") reads every set's goose version table
-- with the serving process's own role. Each set grants its own table; goose
-- creates it before the set's first migration runs.
GRANT SELECT ON goose_eventstore TO orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;

-- +goose Down
REVOKE SELECT ON goose_eventstore FROM orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;
REVOKE SELECT ON events FROM orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;
REVOKE EXECUTE ON FUNCTION
    events_append(uuid, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[]),
    events_append_batch(uuid[], integer[], text[], bigint[], integer[], uuid[], text[], integer[], jsonb[], jsonb[]),
    events_ensure_partition(date)
    FROM orderflow_command;
-- The first migration's function, as it was.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION events_ensure_partition(month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    lo   date := date_trunc('month', month)::date;
    hi   date := (date_trunc('month', month) + interval '1 month')::date;
    name text := format('events_y%sm%s', to_char(lo, 'YYYY'), to_char(lo, 'MM'));
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                   name, events_ulid_floor(lo), events_ulid_floor(hi));
    EXECUTE format('CREATE TRIGGER events_append_lock BEFORE INSERT ON %I
                    FOR EACH STATEMENT EXECUTE FUNCTION events_append_lock()', name);
    EXECUTE format('CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON %I
                    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change()', name);
    RETURN name;
END
$$;
-- +goose StatementEnd
DROP FUNCTION events_create_partition(date);
ALTER FUNCTION events_ulid_floor(date) RESET search_path;
ALTER FUNCTION events_reject_change() RESET search_path;
ALTER FUNCTION events_append_lock() RESET search_path;
ALTER FUNCTION events_append_batch(uuid[], integer[], text[], bigint[], integer[], uuid[], text[], integer[], jsonb[], jsonb[])
    SECURITY INVOKER RESET search_path;
ALTER FUNCTION events_append(uuid, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[])
    SECURITY INVOKER RESET search_path;
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC;
GRANT EXECUTE ON FUNCTION events_append_lock(), events_reject_change(), events_ulid_floor(date),
    events_append(uuid, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[]),
    events_append_batch(uuid[], integer[], text[], bigint[], integer[], uuid[], text[], integer[], jsonb[], jsonb[])
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION events_ensure_partition(date) TO orderflow_app;
GRANT SELECT, INSERT ON events TO orderflow_app;
GRANT USAGE ON SEQUENCE events_position_seq TO orderflow_app;
