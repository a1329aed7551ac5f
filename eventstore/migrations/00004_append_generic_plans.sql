-- +goose Up
-- events_append (a single append: AppendTx, and group commit's batches of
-- one) re-planned its statements against the partitioned table on every
-- call under the default plan_cache_mode. Its statements are index probes a
-- generic plan does as well (the partition is pruned at run time). Measured
-- with pgbench, one client, one-event appends to new streams, interleaved
-- runs on a loaded 2-core machine: 0.50-0.58 ms per call with custom plans,
-- 0.33-0.35 ms with generic ones.
ALTER FUNCTION events_append(uuid, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[])
    SET plan_cache_mode = force_generic_plan;

-- +goose Down
ALTER FUNCTION events_append(uuid, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[])
    RESET plan_cache_mode;
