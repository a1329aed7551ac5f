-- +goose Up
-- One row per projection and Kafka partition: the highest global position
-- applied from that partition. Per partition, so that partitions processed
-- concurrently never contend on one row.
CREATE TABLE projection_checkpoints (
    projection  text        NOT NULL,
    partition   integer     NOT NULL,
    position    bigint      NOT NULL,
    recorded_at timestamptz NOT NULL, -- of the event at position
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, partition)
);

-- What a projection is doing: running, rebuilding or failed (with why).
CREATE TABLE projection_state (
    projection text        PRIMARY KEY,
    state      text        NOT NULL CHECK (state IN ('running', 'rebuilding', 'failed')),
    detail     text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE, DELETE ON projection_checkpoints, projection_state TO orderflow_app;

-- +goose Down
DROP TABLE projection_state;
DROP TABLE projection_checkpoints;
