-- +goose Up
-- Idempotency keys moved into the event store (append_keys, eventstore
-- migration 00006): the group-commit statement that appends a command's
-- events writes its key, so keyed commands no longer need a transaction of
-- their own. This copies the keys still kept here, scoped the way the API
-- now scopes them (the order; /v1/orders for a creation, which the stored
-- status 201 tells), and drops this table. The fingerprints are unchanged
-- (sha256 of method, path and body). This table did not keep an append's
-- first version; the copied rows give the last one for both (the API
-- replays only the last).
--
-- During a rolling upgrade, processes of the previous release answer keyed
-- commands with 500 once this has run (their table is gone), having written
-- nothing; their unkeyed commands carry on (eventstore migration 00006 kept
-- their batch function). Clients' retries of those 500s reach the new processes.

-- Crockford base32 ULID text to its 128 bits as uuid.
-- +goose StatementBegin
CREATE FUNCTION pg_temp.ulid_uuid(u text) RETURNS uuid LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n numeric := 0;
    h text := '';
BEGIN
    FOR i IN 1..26 LOOP
        n := n * 32 + (strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ', upper(substr(u, i, 1))) - 1);
    END LOOP;
    FOR i IN 1..32 LOOP
        h := substr('0123456789abcdef', mod(n, 16)::integer + 1, 1) || h;
        n := div(n, 16);
    END LOOP;
    RETURN h::uuid;
END
$$;
-- +goose StatementEnd

INSERT INTO append_keys (scope, key, fingerprint, stream_id, from_version, to_version, position, created_at)
SELECT CASE WHEN (outcome->>'status')::integer = 201 THEN '/v1/orders'
            ELSE '/v1/orders/' || upper(outcome->>'order_id') END,
       key, fingerprint, pg_temp.ulid_uuid(outcome->>'order_id'),
       (outcome->>'version')::bigint, (outcome->>'version')::bigint, (outcome->>'position')::bigint, created_at
  FROM idempotency_keys
ON CONFLICT DO NOTHING;

DROP TABLE idempotency_keys;

-- +goose Down
-- The table comes back empty: keys stay in the event store.
CREATE TABLE idempotency_keys (
    key         text        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint bytea       NOT NULL,
    outcome     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO orderflow_command;
