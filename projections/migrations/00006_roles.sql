-- +goose Up
-- Read models and their bookkeeping (roles: the eventstore set's
-- 00005_roles.sql). The projector writes them; the query role reads them
-- (the <name>_versions tables too: read-your-writes waits on them).
-- A rebuild's shadow tables copy these grants from the live tables
-- (projections/rebuild_swap.go), so a swap keeps them.
REVOKE ALL ON projection_checkpoints, projection_state,
    order_summary_versions, order_summaries, order_lines,
    customer_stats_versions, customer_stats, customer_paid,
    sales_daily_versions, sales_daily,
    status_counts_versions, status_counts
    FROM orderflow_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON projection_checkpoints, projection_state,
    order_summary_versions, order_summaries, order_lines,
    customer_stats_versions, customer_stats, customer_paid,
    sales_daily_versions, sales_daily,
    status_counts_versions, status_counts
    TO orderflow_projector;
GRANT SELECT ON projection_checkpoints, projection_state,
    order_summary_versions, order_summaries, order_lines,
    customer_stats_versions, customer_stats, customer_paid,
    sales_daily_versions, sales_daily,
    status_counts_versions, status_counts
    TO orderflow_query;
-- GET /v1/projections is served by every node, relay nodes included (the
-- runbooks read its relay section there): the relay role may read each
-- projection's position and state, which hold no order data.
GRANT SELECT ON projection_checkpoints, projection_state TO orderflow_relay;

-- Readiness reads every set's version table with the process's own role.
GRANT SELECT ON goose_projections TO orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;

-- +goose Down
REVOKE SELECT ON goose_projections FROM orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;
REVOKE ALL ON projection_checkpoints, projection_state,
    order_summary_versions, order_summaries, order_lines,
    customer_stats_versions, customer_stats, customer_paid,
    sales_daily_versions, sales_daily,
    status_counts_versions, status_counts
    FROM orderflow_projector, orderflow_query, orderflow_relay;
GRANT SELECT, INSERT, UPDATE, DELETE ON projection_checkpoints, projection_state,
    order_summary_versions, order_summaries, order_lines,
    customer_stats_versions, customer_stats, customer_paid,
    sales_daily_versions, sales_daily,
    status_counts_versions, status_counts
    TO orderflow_app;
