-- +goose Up
-- The idempotency keys belong to the command role alone (roles: the
-- eventstore set's 00005_roles.sql). It reads a key, stores one in the
-- transaction of the append, and expires old ones; nothing else reads them.
REVOKE ALL ON idempotency_keys FROM orderflow_app;
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO orderflow_command;

-- Readiness reads every set's version table with the process's own role.
GRANT SELECT ON goose_commands TO orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;

-- +goose Down
REVOKE SELECT ON goose_commands FROM orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;
REVOKE ALL ON idempotency_keys FROM orderflow_command;
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO orderflow_app;
