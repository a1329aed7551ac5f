-- +goose Up
-- events_append is the only write path: one round trip, one statement, so an
-- append costs what one INSERT costs. It never raises for an expected
-- outcome (a version conflict, a retry): it returns an outcome, so that a
-- caller batching many appends in one transaction (group commit) can carry
-- on with the others.
--
-- Lock order: the stream's advisory lock first (it takes no xid and
-- serializes appends to one stream, so the version read below is stable),
-- then the global append lock, taken by the INSERT's statement trigger. A
-- caller appending to several streams in one transaction must take stream
-- locks in a fixed order (AppendBatch sorts them) to avoid deadlocks.
--
-- p_expected: -1 any, 0 no stream, n > 0 exact version n.
-- +goose StatementBegin
CREATE FUNCTION events_append(
    p_stream uuid, p_stream_type text, p_expected bigint,
    p_ids uuid[], p_types text[], p_schemas integer[], p_data jsonb[], p_meta jsonb[],
    OUT outcome text, OUT actual bigint, OUT from_version bigint, OUT to_version bigint,
    OUT last_position bigint)
LANGUAGE plpgsql AS $$
DECLARE
    cur_type text;
    n        integer := cardinality(p_ids);
    found_n  integer;
    offsets  integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream::text, 0));

    -- Backward scan of the primary key: one index probe.
    SELECT e.version, e.stream_type INTO actual, cur_type
    FROM events e WHERE e.stream_id = p_stream ORDER BY e.version DESC LIMIT 1;
    actual := coalesce(actual, 0);

    -- A retry of an append that already committed carries the same event
    -- ids: recognise it through the (stream_id, event_id) unique index.
    -- Same ids in the same order have a constant (version - ordinal).
    SELECT count(*), min(e.version), max(e.version), max(e.position),
           count(DISTINCT e.version - i.ord)
      INTO found_n, from_version, to_version, last_position, offsets
      FROM unnest(p_ids) WITH ORDINALITY AS i(id, ord)
      JOIN events e ON e.stream_id = p_stream AND e.event_id = i.id;
    IF found_n > 0 THEN
        IF found_n = n AND offsets = 1 THEN
            outcome := 'replayed';
        ELSE
            outcome := 'id_conflict';
        END IF;
        RETURN;
    END IF;

    IF cur_type IS NOT NULL AND cur_type <> p_stream_type THEN
        outcome := 'type_mismatch';
        RETURN;
    END IF;
    IF (p_expected = 0 AND actual <> 0) OR (p_expected > 0 AND actual <> p_expected) THEN
        outcome := 'wrong_version';
        RETURN;
    END IF;

    -- ORDER BY ord: positions are drawn from the sequence in version order.
    WITH ins AS (
        INSERT INTO events (stream_id, version, event_id, stream_type, event_type,
                            schema_version, data, metadata)
        SELECT p_stream, actual + u.ord, u.id, p_stream_type, u.t, u.s, u.d, u.m
          FROM unnest(p_ids, p_types, p_schemas, p_data, p_meta) WITH ORDINALITY AS u(id, t, s, d, m, ord)
         ORDER BY u.ord
        RETURNING position)
    SELECT max(position) INTO last_position FROM ins;

    from_version := actual + 1;
    to_version := actual + n;
    outcome := 'appended';
    -- Wakes the relay. Delivered at commit, and only if the commit happens.
    PERFORM pg_notify('orderflow_events', last_position::text);
END
$$;
-- +goose StatementEnd

GRANT EXECUTE ON FUNCTION events_append(uuid, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[]) TO orderflow_app;

-- +goose Down
DROP FUNCTION events_append(uuid, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[]);
