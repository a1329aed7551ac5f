-- +goose Up
CREATE TABLE sales_daily_versions (
    stream_id uuid   PRIMARY KEY,
    version   bigint NOT NULL,
    state     jsonb  NOT NULL
);

-- Sales by UTC day and currency (the order's). Each transition counts on the
-- day it happened: placed on placed_at's day, paid on paid_at's, cancelled on
-- cancelled_at's, refunded on refunded_at's. revenue_minor is paid money; net
-- revenue is revenue - refunded, and the average order value is revenue /
-- paid_count, both computed on read. The money sums are numeric for the
-- reason given on customer_paid: a sum of int64 totals can exceed bigint.
--
-- GET /v1/stats/sales?from&to[&currency] (at most 366 days) is one range
-- scan of the primary key. EXPLAIN of "... WHERE day BETWEEN $1 AND $2
-- [AND currency = $3] ORDER BY day, currency" with six years of 8
-- currencies: Bitmap Index Scan on sales_daily_pkey, Index Cond (day >= $1
-- AND day <= $2 [AND currency = $3]), then a Sort of the at most
-- 366 × currencies rows found. With a currency the index scan still walks
-- the whole day range and skips the other currencies' entries, but a day
-- holds one entry per currency sold that day, so a (currency, day) index
-- would save little and cost every write; there is none.
CREATE TABLE sales_daily (
    day             date    NOT NULL,
    currency        text    NOT NULL,
    placed_count    bigint  NOT NULL DEFAULT 0,
    placed_minor    numeric NOT NULL DEFAULT 0,
    paid_count      bigint  NOT NULL DEFAULT 0,
    revenue_minor   numeric NOT NULL DEFAULT 0,
    cancelled_count bigint  NOT NULL DEFAULT 0,
    refunded_count  bigint  NOT NULL DEFAULT 0,
    refunded_minor  numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (day, currency)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON sales_daily_versions, sales_daily TO orderflow_app;

-- +goose Down
DROP TABLE sales_daily;
DROP TABLE sales_daily_versions;
