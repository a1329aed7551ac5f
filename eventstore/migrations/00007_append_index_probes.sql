-- +goose Up
-- events_append (AppendTx, and group commit's lone unkeyed requests) with
-- its retry probe as one index lookup per event id, and with sequential
-- scans off, for the reason migration 00006 gives for events_append_batch:
-- its generic plan, made once per session with the statistics of that
-- moment, hashed a sequential scan of the stream's whole partition against
-- the ids whenever the partition was young (a fresh database, the first
-- days of a month), and kept doing so as the partition grew, until the next
-- ANALYZE (measured: 0.58 ms for one event against 3 000 rows, growing with
-- the partition). A new stream, which has nothing to find, skips the probe.
-- Same signature, outcomes, rights and grants (CREATE OR REPLACE keeps the
-- grants): processes of the previous release call it unchanged.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION events_append(
    p_stream uuid, p_stream_type text, p_expected bigint,
    p_ids uuid[], p_types text[], p_schemas integer[], p_data jsonb[], p_meta jsonb[],
    OUT outcome text, OUT actual bigint, OUT from_version bigint, OUT to_version bigint,
    OUT last_position bigint)
LANGUAGE plpgsql
-- As 00005_roles.sql made it: the owner's rights, names resolved in public.
SECURITY DEFINER SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
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
    IF actual > 0 THEN
        SELECT count(*), min(e.version), max(e.version), max(e.position),
               count(DISTINCT e.version - i.ord)
          INTO found_n, from_version, to_version, last_position, offsets
          FROM unnest(p_ids) WITH ORDINALITY AS i(id, ord)
          CROSS JOIN LATERAL (SELECT ev.version, ev.position FROM events ev
                               WHERE ev.stream_id = p_stream AND ev.event_id = i.id LIMIT 1) AS e;
        IF found_n > 0 THEN
            IF found_n = n AND offsets = 1 THEN
                outcome := 'replayed';
            ELSE
                outcome := 'id_conflict';
            END IF;
            RETURN;
        END IF;
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

-- +goose Down
ALTER FUNCTION events_append(uuid, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[])
    RESET enable_seqscan;
