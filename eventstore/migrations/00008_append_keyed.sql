-- +goose Up
-- events_append_keyed: one keyed request, as events_append is one unkeyed
-- request: group commit's batches of exactly one keyed request (a lone
-- writer, or a quiet moment) take it instead of events_append_batch, whose
-- array machinery costs a lone request about 0.2 ms more per call (0.64 ms
-- against 0.44, one-event appends to new streams, interleaved in one run). The same
-- decisions as migration 00006 gives a keyed request of a batch, in the same
-- lock order (its stream, then its key, then the global lock by the INSERT),
-- and the same outcomes: key_replayed, key_reused, type_mismatch,
-- wrong_version, appended. A keyed request is recognised as a retry by its
-- key, so its event ids are not probed (as in 00006).
-- +goose StatementBegin
CREATE FUNCTION events_append_keyed(
    p_stream uuid, p_stream_type text, p_expected bigint,
    p_ids uuid[], p_types text[], p_schemas integer[], p_data text[], p_meta text[],
    p_key_scope text, p_key text, p_fp bytea,
    OUT outcome text, OUT actual bigint, OUT from_version bigint, OUT to_version bigint,
    OUT last_position bigint, OUT stream_id uuid)
LANGUAGE plpgsql
-- The owner's rights to insert (00005_roles.sql), names resolved in public.
SECURITY DEFINER SET search_path = public, pg_temp
-- Generic plans whose lookups are index probes whatever the statistics
-- said when they were made (see 00006).
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    cur_type text;
    n        integer := cardinality(p_ids);
    k_fp     bytea;
    k_stream uuid;
    k_from   bigint;
    k_to     bigint;
    k_pos    bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream::text, 0));
    PERFORM pg_advisory_xact_lock(1701079400, hashtext(p_key_scope || E'\n' || p_key));

    -- The key first: stored, it answers for the request whatever the
    -- stream's state. Holding its lock, a key another transaction stored is
    -- seen here (that one committed or rolled back before the lock was ours).
    SELECT a.fingerprint, a.stream_id, a.from_version, a.to_version, a.position
      INTO k_fp, k_stream, k_from, k_to, k_pos
      FROM append_keys a WHERE a.scope = p_key_scope AND a.key = p_key;

    -- Backward scan of the primary key: one index probe.
    SELECT e.version, e.stream_type INTO actual, cur_type
      FROM events e WHERE e.stream_id = p_stream ORDER BY e.version DESC LIMIT 1;
    actual := coalesce(actual, 0);
    stream_id := p_stream;

    IF k_fp IS NOT NULL THEN
        IF k_fp = p_fp THEN
            outcome := 'key_replayed';
            from_version := k_from;
            to_version := k_to;
            last_position := k_pos;
            stream_id := k_stream;
        ELSE
            outcome := 'key_reused';
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
    -- The trigger takes the global append lock here, after the stream's and
    -- the key's.
    WITH ins AS (
        INSERT INTO events (stream_id, version, event_id, stream_type, event_type,
                            schema_version, data, metadata)
        SELECT p_stream, actual + u.ord, u.id, p_stream_type, u.t, u.s, u.d::jsonb, u.m::jsonb
          FROM unnest(p_ids, p_types, p_schemas, p_data, p_meta) WITH ORDINALITY AS u(id, t, s, d, m, ord)
         ORDER BY u.ord
        RETURNING position)
    SELECT max(position) INTO last_position FROM ins;
    from_version := actual + 1;
    to_version := actual + n;
    INSERT INTO append_keys (scope, key, fingerprint, stream_id, from_version, to_version, position)
    VALUES (p_key_scope, p_key, p_fp, p_stream, from_version, to_version, last_position);
    outcome := 'appended';
    -- Wakes the relay. Delivered at commit, and only if the commit happens.
    PERFORM pg_notify('orderflow_events', last_position::text);
END
$$;
-- +goose StatementEnd

GRANT EXECUTE ON FUNCTION events_append_keyed(uuid, text, bigint, uuid[], text[], integer[], text[], text[],
    text, text, bytea) TO orderflow_command;

-- +goose Down
DROP FUNCTION events_append_keyed(uuid, text, bigint, uuid[], text[], integer[], text[], text[], text, text, bytea);
