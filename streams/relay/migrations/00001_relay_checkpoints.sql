-- +goose Up
-- One row per relay topic: the highest event position whose message (and
-- every message below it) Kafka has acknowledged. The relay only moves it
-- forward (UPDATE ... WHERE position < new), except for the documented
-- fresh-topic reset to 0.
CREATE TABLE relay_checkpoints (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The serving pool runs as orderflow_app (created by the eventstore set,
-- which is applied first).
GRANT SELECT, INSERT, UPDATE ON relay_checkpoints TO orderflow_app;

-- +goose Down
DROP TABLE relay_checkpoints;
