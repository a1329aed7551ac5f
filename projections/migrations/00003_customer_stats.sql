-- +goose Up
CREATE TABLE customer_stats_versions (
    stream_id uuid   PRIMARY KEY,
    version   bigint NOT NULL,
    state     jsonb  NOT NULL
);

-- One row per customer: order counts by current status and the span of
-- their orders. GET /v1/customers/{id}/stats reads it by primary key.
CREATE TABLE customer_stats (
    customer_id     text        PRIMARY KEY,
    orders_total    bigint      NOT NULL DEFAULT 0,
    draft           bigint      NOT NULL DEFAULT 0,
    placed          bigint      NOT NULL DEFAULT 0,
    paid            bigint      NOT NULL DEFAULT 0,
    shipped         bigint      NOT NULL DEFAULT 0,
    delivered       bigint      NOT NULL DEFAULT 0,
    cancelled       bigint      NOT NULL DEFAULT 0,
    first_order_at  timestamptz NOT NULL,
    last_order_at   timestamptz NOT NULL
);

-- Lifetime money per customer and currency: paid, refunded, and net
-- (paid - refunded) computed on read. Read by primary-key prefix.
CREATE TABLE customer_paid (
    customer_id    text   NOT NULL,
    currency       text   NOT NULL,
    paid_minor     bigint NOT NULL DEFAULT 0,
    refunded_minor bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, currency)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON customer_stats_versions, customer_stats, customer_paid TO orderflow_app;

-- +goose Down
DROP TABLE customer_paid;
DROP TABLE customer_stats;
DROP TABLE customer_stats_versions;
