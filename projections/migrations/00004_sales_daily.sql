-- +goose Up
CREATE TABLE sales_daily_versions (
    stream_id uuid   PRIMARY KEY,
    version   bigint NOT NULL,
    state     jsonb  NOT NULL
);

-- Sales by UTC day and currency. Each transition counts on the day it
-- happened: placed on placed_at's day, paid on paid_at's, and so on.
-- revenue_minor is paid money; net revenue is revenue - refunded, and the
-- average order value is revenue / paid_count, both computed on read.
-- GET /v1/stats/sales?from&to&currency is a primary-key range scan.
CREATE TABLE sales_daily (
    day             date   NOT NULL,
    currency        text   NOT NULL,
    placed_count    bigint NOT NULL DEFAULT 0,
    placed_minor    bigint NOT NULL DEFAULT 0,
    paid_count      bigint NOT NULL DEFAULT 0,
    revenue_minor   bigint NOT NULL DEFAULT 0,
    cancelled_count bigint NOT NULL DEFAULT 0,
    refunded_count  bigint NOT NULL DEFAULT 0,
    refunded_minor  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, currency)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON sales_daily_versions, sales_daily TO orderflow_app;

-- +goose Down
DROP TABLE sales_daily;
DROP TABLE sales_daily_versions;
