-- +goose Up
-- Every projection has a <name>_versions table: the version of each order
-- it has applied and the order's folded state after it. The version makes
-- redelivery harmless (exactly-once effect); the state gives each change its
-- before and after without reading other projections.
CREATE TABLE order_summary_versions (
    stream_id uuid   PRIMARY KEY,
    version   bigint NOT NULL,
    state     jsonb  NOT NULL
);

CREATE TABLE order_summaries (
    order_id        uuid        PRIMARY KEY,
    customer_id     text        NOT NULL,
    currency        text        NOT NULL,
    status          text        NOT NULL,
    total_minor     bigint      NOT NULL,
    paid_minor      bigint      NOT NULL,
    refunded_minor  bigint      NOT NULL,
    line_count      integer     NOT NULL,
    item_quantity   bigint      NOT NULL,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    placed_at       timestamptz,
    paid_at         timestamptz,
    shipped_at      timestamptz,
    delivered_at    timestamptz,
    cancelled_at    timestamptz,
    refunded_at     timestamptz,
    carrier         text,
    tracking_number text,
    payment_reference text,
    cancel_reason   text
);

-- The list endpoint filters by customer and/or status and sorts by
-- created_at, updated_at or total with order_id as the keyset tie-breaker.
-- EXPLAIN (1M orders): "WHERE customer_id = $1 ORDER BY created_at DESC,
-- order_id DESC LIMIT 51" is an Index Scan Backward on
-- order_summaries_customer_created_idx reading 51 rows; without it, a
-- Bitmap Heap Scan plus top-N sort over the customer's orders.
CREATE INDEX order_summaries_customer_created_idx ON order_summaries (customer_id, created_at, order_id);
-- Unfiltered (or status-filtered) lists by creation time: an ordered index
-- scan that stops after the page, filtering status on the way.
CREATE INDEX order_summaries_created_idx ON order_summaries (created_at, order_id);
-- Sorted by last change: same shape for updated_at.
CREATE INDEX order_summaries_updated_idx ON order_summaries (updated_at, order_id);
-- Sorted or ranged by total.
CREATE INDEX order_summaries_total_idx ON order_summaries (total_minor, order_id);
-- Status filter combined with time sort: dashboards list "placed, newest first".
CREATE INDEX order_summaries_status_created_idx ON order_summaries (status, created_at, order_id);

CREATE TABLE order_lines (
    order_id         uuid    NOT NULL,
    line_no          integer NOT NULL, -- position in the order, 1-based
    sku              text    NOT NULL,
    name             text    NOT NULL,
    quantity         bigint  NOT NULL,
    unit_price_minor bigint  NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON order_summary_versions, order_summaries, order_lines TO orderflow_app;

-- +goose Down
DROP TABLE order_lines;
DROP TABLE order_summaries;
DROP TABLE order_summary_versions;
