-- +goose Up
-- A successful command's outcome, stored in the transaction that appended
-- its events, so that a retry with the same Idempotency-Key replays it and
-- appends nothing. Kept at least 24 h (ExpireIdempotencyKeys).
CREATE TABLE idempotency_keys (
    key         text        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    -- sha256 of method, path and body: the same key with another request is
    -- refused rather than replayed.
    fingerprint bytea       NOT NULL,
    outcome     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Expiry deletes by age.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO orderflow_app;

-- +goose Down
DROP TABLE idempotency_keys;
