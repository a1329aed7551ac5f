-- +goose Up
CREATE TABLE status_counts_versions (
    stream_id uuid   PRIMARY KEY,
    version   bigint NOT NULL,
    state     jsonb  NOT NULL
);

-- Orders by current status, for dashboards: six rows.
CREATE TABLE status_counts (
    status text   PRIMARY KEY,
    orders bigint NOT NULL DEFAULT 0
);

GRANT SELECT, INSERT, UPDATE, DELETE ON status_counts_versions, status_counts TO orderflow_app;

-- +goose Down
DROP TABLE status_counts;
DROP TABLE status_counts_versions;
