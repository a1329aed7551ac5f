-- +goose Up
-- The relay's checkpoint belongs to the relay role (roles: the eventstore
-- set's 00005_roles.sql). It creates its row, reads it and moves it; only an
-- operator deletes it (the restore runbook), as the owner.
REVOKE ALL ON relay_checkpoints FROM orderflow_app;
GRANT SELECT, INSERT, UPDATE ON relay_checkpoints TO orderflow_relay;

-- Readiness reads every set's version table with the process's own role.
GRANT SELECT ON goose_relay TO orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;

-- +goose Down
REVOKE SELECT ON goose_relay FROM orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;
REVOKE ALL ON relay_checkpoints FROM orderflow_relay;
GRANT SELECT, INSERT, UPDATE ON relay_checkpoints TO orderflow_app;
