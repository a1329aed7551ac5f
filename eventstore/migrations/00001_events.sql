-- +goose Up
-- The application role: it may read and append events, nothing else. The
-- serving process switches to it (SET ROLE) on every pooled connection.
-- +goose StatementBegin
-- Roles are cluster-wide: databases migrated at the same time (tests, or
-- several services on one server) race to create it, hence the exception.
DO $$
BEGIN
    CREATE ROLE orderflow_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
-- +goose StatementEnd

CREATE SEQUENCE events_position_seq AS bigint;

-- Partitioned by stream id: a stream id is a ULID stored as uuid, whose
-- leading 48 bits are its creation time, so one monthly range of ULIDs is one
-- month of streams. All of a stream's events share a partition, so the
-- primary key (stream_id, version) is enforceable and globally unique.
CREATE TABLE events (
    stream_id      uuid        NOT NULL,
    version        bigint      NOT NULL CHECK (version >= 1),
    event_id       uuid        NOT NULL,
    stream_type    text        NOT NULL CHECK (stream_type <> ''),
    event_type     text        NOT NULL CHECK (event_type <> ''),
    schema_version integer     NOT NULL DEFAULT 1 CHECK (schema_version >= 1),
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}',
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Handed out only under the global append lock (events_append_lock), so
    -- positions become visible in increasing order.
    position       bigint      NOT NULL DEFAULT nextval('events_position_seq'),
    PRIMARY KEY (stream_id, version),
    -- An idempotent retry is recognised by its event ids. Uniqueness can only
    -- be enforced with the partition key; ULIDs make cross-stream collisions
    -- a 2^-80 event.
    UNIQUE (stream_id, event_id)
) PARTITION BY RANGE (stream_id);

ALTER SEQUENCE events_position_seq OWNED BY events.position;

-- ReadAll: "position > $1 ORDER BY position LIMIT n" is a Merge Append of
-- one index scan per partition, each stopping after n rows.
CREATE INDEX events_position_idx ON events (position);
-- Export and as-of queries filter by time.
CREATE INDEX events_recorded_at_idx ON events (recorded_at);

-- The global append lock. Taken by a BEFORE INSERT statement trigger, i.e.
-- before any row's position default is evaluated, and held to commit.
-- Advisory locks take no xid and are released after the commit is visible.
-- +goose StatementBegin
CREATE FUNCTION events_append_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7207745461657985024); -- a fixed key of its own
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION events_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

CREATE TRIGGER events_append_lock BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_lock();
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

-- Creates the partition holding the streams created in the month of
-- "month". SECURITY DEFINER so that the application role can keep partitions
-- ahead without the right to create tables. Each partition carries the
-- statement triggers too, so that even a direct insert into a partition (only
-- the owner could) takes the append lock.
-- +goose StatementBegin
CREATE FUNCTION events_ensure_partition(month date) RETURNS text
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

-- The smallest ULID (as uuid) whose time is the start of day d, UTC.
-- +goose StatementBegin
CREATE FUNCTION events_ulid_floor(d date) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$
    SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' ||
            substr(h, 17, 4) || '-' || substr(h, 21, 12))::uuid
    FROM (SELECT lpad(to_hex((extract(epoch FROM d::timestamp AT TIME ZONE 'UTC') * 1000)::bigint), 12, '0')
                 || repeat('0', 20) AS h) AS x
$$;
-- +goose StatementEnd

REVOKE ALL ON FUNCTION events_ensure_partition(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION events_ensure_partition(date) TO orderflow_app;
GRANT SELECT, INSERT ON events TO orderflow_app;
GRANT USAGE ON SEQUENCE events_position_seq TO orderflow_app;

-- +goose Down
DROP TABLE events;
DROP FUNCTION events_ensure_partition(date);
DROP FUNCTION events_ulid_floor(date);
DROP FUNCTION events_reject_change();
DROP FUNCTION events_append_lock();
