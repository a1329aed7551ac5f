-- +goose Up
-- Request keys: an append may carry a key (scope, key) and a fingerprint of
-- the request it stands for. The first append with a key stores its result
-- here, in its own transaction; a later append with the same key and
-- fingerprint appends nothing and gets that result back ("key_replayed"),
-- one with another fingerprint is refused ("key_reused"). It is the event
-- store's generic form of an idempotency key: the store knows nothing of
-- what a scope, a key or a fingerprint mean to the caller.
--
-- A key is written in the transaction of its events, by the statement that
-- appends them, so there is never a key without its events nor events of a
-- keyed request without their key, whatever crashes when.
CREATE TABLE append_keys (
    scope        text        NOT NULL,
    key          text        NOT NULL CHECK (key <> ''),
    fingerprint  bytea       NOT NULL,
    -- Where the first append's events are: a replay answers with these.
    stream_id    uuid        NOT NULL,
    from_version bigint      NOT NULL,
    to_version   bigint      NOT NULL,
    position     bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
-- Expiry deletes by age (Store.ExpireKeys). Rows arrive in created_at
-- order, which is what BRIN needs: a few pages of summaries instead of a
-- B-tree entry written by every keyed command.
CREATE INDEX append_keys_created_at_idx ON append_keys USING brin (created_at);
-- The command role reads a key (Store.LookupKey) and expires old ones; it
-- stores them only through the append functions (SECURITY DEFINER, as every
-- write path since 00005_roles.sql), so that no key exists without its
-- events.
GRANT SELECT, DELETE ON append_keys TO orderflow_command;

-- events_append_batch with request keys: migration 00003's function plus
--   p_key_scopes, p_key_names   the call's distinct keys (every round of a
--                               batch passes all of the batch's keys); all
--                               are locked
--   p_req_key                   per request: index into the keys, 0 for none
--   p_req_fp                    per request: its fingerprint (ignored without a key)
-- with the events' data and metadata as text[] (cast to jsonb by the
-- INSERT: the same parse the jsonb[] argument did, and the Go side encodes
-- text without boxing each element), and, per result row, stream_id: the
-- request's stream, or for key_replayed
-- the stream of the key's first append (a retried creation of a new stream
-- names a new stream id, and must get the first one back).
--
-- Outcomes besides 00003's: key_replayed (the key is stored with this
-- fingerprint: nothing appended, the first append's result returned) and
-- key_reused (stored with another fingerprint: nothing appended). A key is
-- decided before everything else about its request. A key first used by an
-- earlier request of the same call that was appended counts as stored.
-- A request that is not appended stores no key.
--
-- Lock order: stream locks (sorted), then key locks (sorted), then the
-- global append lock (the INSERT's trigger). Key locks are advisory locks in
-- the two-int4 space, which no other lock of the store uses, keyed by a hash
-- of (scope, key); two keys sharing a hash only serialize. Holding a key's
-- lock, a call sees whether another transaction stored the key (it waited
-- for that one's commit or rollback), so two requests with one key never
-- both append, in one call, in concurrent calls or on several nodes.
--
-- 00003's ten-argument function stays: processes of the previous release
-- call it until they are replaced.
-- +goose StatementBegin
CREATE FUNCTION events_append_batch(
    p_streams uuid[], p_req_stream integer[], p_req_type text[], p_req_expected bigint[], p_req_count integer[],
    p_ids uuid[], p_types text[], p_schemas integer[], p_data text[], p_meta text[],
    p_key_scopes text[], p_key_names text[], p_req_key integer[], p_req_fp bytea[])
RETURNS TABLE (outcome text, actual bigint, from_version bigint, to_version bigint, last_position bigint, stream_id uuid)
LANGUAGE plpgsql
-- The owner's rights to insert (00005_roles.sql), names resolved in public
-- only.
SECURITY DEFINER SET search_path = public, pg_temp
-- Generic plans, as for 00003's function (see there). A generic plan is made
-- once per session, with the statistics of that moment: on a young table
-- (a fresh database, or append_keys in its first minutes) the planner
-- prefers one sequential scan hashed against the arguments, and the plan
-- keeps scanning the whole table as it grows, until the next ANALYZE
-- (measured: the key probe took 1.4 ms for 32 keys against 9 600 rows, and
-- grew with the table). Every probe below is an index lookup per argument
-- row (LATERAL … LIMIT 1, which the planner cannot turn into a join), and
-- with sequential scans off the lookup is the index's whatever the
-- statistics say.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    n_req    integer := cardinality(p_req_stream);
    n_ev     integer := cardinality(p_ids);
    n_keys   integer := coalesce(cardinality(p_key_scopes), 0);
    ev_req   integer[];                 -- per event: its request
    ev_ver   bigint[];                  -- per event: its version, NULL if not inserted
    cur_ver  bigint[];                  -- per stream: version as decided so far
    cur_type text[];                    -- per stream: type, NULL for a new stream
    f_n      bigint[];                  -- per request: ids already stored …
    f_lo     bigint[];                  -- … their lowest and highest version,
    f_hi     bigint[];
    f_pos    bigint[];                  -- … highest position,
    f_offs   bigint[];                  -- … and distinct (version - ordinal)
    k_fp     bytea[];                   -- per key: fingerprint if stored (or taken in this call) …
    k_stream uuid[];                    -- … and the result it answers with
    k_from   bigint[];
    k_to     bigint[];
    k_pos    bigint[];
    k_req    integer[];                 -- per key: the request of this call that took it
    o        text[]   := array_fill(NULL::text, ARRAY[n_req]);
    act      bigint[] := array_fill(NULL::bigint, ARRAY[n_req]);
    fv       bigint[] := array_fill(NULL::bigint, ARRAY[n_req]);
    tv       bigint[] := array_fill(NULL::bigint, ARRAY[n_req]);
    lp       bigint[] := array_fill(NULL::bigint, ARRAY[n_req]);
    sid      uuid[]   := array_fill(NULL::uuid, ARRAY[n_req]);
    rep      integer[] := array_fill(NULL::integer, ARRAY[n_req]); -- key_replayed of a request of this call
    ins_pos  bigint[];
    head     bigint;
    s        integer;
    c        integer;
    k        integer;
    e        integer := 1;              -- the current request's first event
    exp      bigint;
    probe    boolean := false;          -- some request needs its event ids probed
BEGIN
    IF n_req IS NULL OR n_req = 0 THEN
        RETURN;
    END IF;
    IF n_ev IS DISTINCT FROM (SELECT sum(x)::integer FROM unnest(p_req_count) AS x) THEN
        RAISE EXCEPTION 'events_append_batch: % events for % announced', n_ev,
            (SELECT sum(x) FROM unnest(p_req_count) AS x) USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- 1. Stream locks, sorted by key (the aggregate consumes the sorted
    -- subquery in order, so the locks are taken in that order).
    PERFORM count(pg_advisory_xact_lock(l.k)) FROM (
        SELECT DISTINCT hashtextextended(x::text, 0) AS k FROM unnest(p_streams) AS x ORDER BY 1) AS l;

    -- 2. Key locks, sorted, then the keys already stored. Each statement of
    -- this function reads a fresh snapshot, so a key committed by the
    -- transaction this one waited for is seen here.
    IF n_keys > 0 THEN
        PERFORM count(pg_advisory_xact_lock(1701079400, l.k)) FROM (
            SELECT DISTINCT hashtext(x.s || E'\n' || x.n) AS k
              FROM unnest(p_key_scopes, p_key_names) AS x(s, n) ORDER BY 1) AS l;
        SELECT array_agg(a.fingerprint ORDER BY x.ord), array_agg(a.stream_id ORDER BY x.ord),
               array_agg(a.from_version ORDER BY x.ord), array_agg(a.to_version ORDER BY x.ord),
               array_agg(a.position ORDER BY x.ord)
          INTO k_fp, k_stream, k_from, k_to, k_pos
          FROM unnest(p_key_scopes, p_key_names) WITH ORDINALITY AS x(s, n, ord)
          LEFT JOIN LATERAL (SELECT ak.fingerprint, ak.stream_id, ak.from_version, ak.to_version, ak.position
                               FROM append_keys ak WHERE ak.scope = x.s AND ak.key = x.n LIMIT 1) AS a ON true;
        k_req := array_fill(NULL::integer, ARRAY[n_keys]);
    END IF;

    -- 3. Each stream's version and type: one backward probe of the primary
    -- key per stream (run-time pruning picks the partition per stream).
    SELECT array_agg(coalesce(h.version, 0) ORDER BY x.ord), array_agg(h.stream_type ORDER BY x.ord)
      INTO cur_ver, cur_type
      FROM unnest(p_streams) WITH ORDINALITY AS x(id, ord)
      LEFT JOIN LATERAL (SELECT ev.version, ev.stream_type FROM events ev
                          WHERE ev.stream_id = x.id ORDER BY ev.version DESC LIMIT 1) AS h ON true;

    -- 4. Which request each event belongs to (in arrays: an aggregate over
    -- generate_series cost a tenth of the call), and whether any request
    -- needs its event ids probed: an unkeyed one on an existing stream. A
    -- keyed request is recognised as a retry by its key, which is decided
    -- first; the same ids under another key fail the INSERT's unique index.
    ev_req := array_fill(0, ARRAY[n_ev]);
    FOR r IN 1..n_req LOOP
        FOR j IN 1..p_req_count[r] LOOP
            ev_req[e] := r;
            e := e + 1;
        END LOOP;
        probe := probe OR (cur_ver[p_req_stream[r]] > 0 AND coalesce(p_req_key[r], 0) = 0);
    END LOOP;
    e := 1;

    -- 5. Retries by event id, as in 00003 (one index lookup per event that
    -- needs it; (stream_id, event_id) is unique, hence LIMIT 1). Without a
    -- probe f_n stays NULL, which step 6 reads as nothing found.
    IF probe THEN
        SELECT array_agg(coalesce(f.n, 0) ORDER BY r), array_agg(f.lo ORDER BY r), array_agg(f.hi ORDER BY r),
               array_agg(f.pos ORDER BY r), array_agg(coalesce(f.offs, 0) ORDER BY r)
          INTO f_n, f_lo, f_hi, f_pos, f_offs
          FROM generate_series(1, n_req) AS r
          LEFT JOIN (SELECT i.req, count(*) AS n, min(ev.version) AS lo, max(ev.version) AS hi,
                            max(ev.position) AS pos, count(DISTINCT ev.version - i.ord) AS offs
                       FROM unnest(p_ids, ev_req) WITH ORDINALITY AS i(id, req, ord)
                       CROSS JOIN LATERAL (SELECT e2.version, e2.position FROM events e2
                                            WHERE e2.stream_id = p_streams[p_req_stream[i.req]] AND e2.event_id = i.id
                                            LIMIT 1) AS ev
                      WHERE cur_ver[p_req_stream[i.req]] > 0 AND coalesce(p_req_key[i.req], 0) = 0
                      GROUP BY i.req) AS f ON f.req = r;
    END IF;

    -- 6. Decide each request in order; only arrays are touched here. The key
    -- comes first: a stored key answers for its request whatever the
    -- stream's state.
    ev_ver := array_fill(NULL::bigint, ARRAY[n_ev]);
    FOR r IN 1..n_req LOOP
        s := p_req_stream[r];
        c := p_req_count[r];
        exp := p_req_expected[r];
        k := coalesce(p_req_key[r], 0);
        act[r] := cur_ver[s];
        IF k > 0 AND k_fp[k] IS NOT NULL THEN
            IF k_fp[k] = p_req_fp[r] THEN
                o[r] := 'key_replayed';
                fv[r] := k_from[k];
                tv[r] := k_to[k];
                lp[r] := k_pos[k];
                sid[r] := k_stream[k];
                rep[r] := k_req[k];     -- its position is known after the INSERT
            ELSE
                o[r] := 'key_reused';
            END IF;
        ELSIF f_n[r] > 0 THEN           -- NULL (no probe) is not
            IF f_n[r] = c AND f_offs[r] = 1 THEN
                o[r] := 'replayed';
                fv[r] := f_lo[r];
                tv[r] := f_hi[r];
                lp[r] := f_pos[r];
            ELSE
                o[r] := 'id_conflict';
            END IF;
        ELSIF cur_type[s] IS NOT NULL AND cur_type[s] <> p_req_type[r] THEN
            o[r] := 'type_mismatch';
        ELSIF (exp = 0 AND cur_ver[s] <> 0) OR (exp > 0 AND cur_ver[s] <> exp) THEN
            o[r] := 'wrong_version';
        ELSE
            o[r] := 'appended';
            fv[r] := cur_ver[s] + 1;
            tv[r] := cur_ver[s] + c;
            FOR j IN 0..c - 1 LOOP
                ev_ver[e + j] := cur_ver[s] + 1 + j;
            END LOOP;
            cur_ver[s] := cur_ver[s] + c;
            cur_type[s] := p_req_type[r];
            IF k > 0 THEN
                k_fp[k] := p_req_fp[r];
                k_stream[k] := p_streams[s];
                k_from[k] := fv[r];
                k_to[k] := tv[r];
                k_req[k] := r;
            END IF;
        END IF;
        e := e + c;
    END LOOP;

    -- 7. One statement writes every accepted event, in request order (ORDER
    -- BY ord draws the position defaults in that order; its trigger takes
    -- the global append lock here, after every stream and key lock), and the
    -- keys taken in this call with their requests' positions.
    IF EXISTS (SELECT FROM unnest(o) AS x WHERE x = 'appended') THEN
        WITH ins AS (
            INSERT INTO events (stream_id, version, event_id, stream_type, event_type,
                                schema_version, data, metadata)
            SELECT p_streams[p_req_stream[u.req]], u.v, u.id, p_req_type[u.req], u.t, u.sv, u.d::jsonb, u.m::jsonb
              FROM unnest(p_ids, p_types, p_schemas, p_data, p_meta, ev_req, ev_ver)
                   WITH ORDINALITY AS u(id, t, sv, d, m, req, v, ord)
             WHERE u.v IS NOT NULL
             ORDER BY u.ord
            RETURNING events.stream_id, events.version, events.position),
        pos AS (
            SELECT r, ins.position
              FROM generate_series(1, n_req) AS r
              LEFT JOIN ins ON o[r] = 'appended' AND ins.stream_id = p_streams[p_req_stream[r]] AND ins.version = tv[r]),
        keys AS (
            INSERT INTO append_keys (scope, key, fingerprint, stream_id, from_version, to_version, position)
            SELECT p_key_scopes[kk], p_key_names[kk], k_fp[kk], k_stream[kk], k_from[kk], k_to[kk], pos.position
              FROM generate_series(1, n_keys) AS kk JOIN pos ON pos.r = k_req[kk])
        SELECT array_agg(pos.position ORDER BY pos.r), max(pos.position) INTO ins_pos, head FROM pos;
        -- Wakes the relay. Delivered at commit, and only if the commit happens.
        PERFORM pg_notify('orderflow_events', head::text);
    END IF;

    RETURN QUERY
        SELECT o[r], act[r], fv[r], tv[r], coalesce(lp[r], ins_pos[r], ins_pos[rep[r]]),
               coalesce(sid[r], p_streams[p_req_stream[r]])
          FROM generate_series(1, n_req) AS r ORDER BY r;
END
$$;
-- +goose StatementEnd

GRANT EXECUTE ON FUNCTION events_append_batch(uuid[], integer[], text[], bigint[], integer[],
    uuid[], text[], integer[], text[], text[], text[], text[], integer[], bytea[]) TO orderflow_command;

-- +goose Down
DROP FUNCTION events_append_batch(uuid[], integer[], text[], bigint[], integer[],
    uuid[], text[], integer[], text[], text[], text[], text[], integer[], bytea[]);
DROP TABLE append_keys;
