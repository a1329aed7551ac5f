-- +goose Up
-- The audit log of admin actions: who did what to what, why and when.
-- Append-only: no role is granted UPDATE or DELETE, so an entry, once
-- committed, stays (only the schema owner could remove one).
--
-- actor is who the caller says acted (a token's subject, or the operating
-- system user of an admin command); db_user is the database login the
-- entry was written with, which the server fills in and the caller cannot
-- choose.
CREATE TABLE audit_log (
    id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text        NOT NULL CHECK (actor <> '' AND length(actor) <= 200),
    db_user  text        NOT NULL DEFAULT session_user,
    action   text        NOT NULL CHECK (action <> '' AND length(action) <= 100),
    target   text        NOT NULL CHECK (length(target) <= 200),
    reason   text        NOT NULL CHECK (length(reason) <= 2000),
    detail   jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object')
);
-- Filters of `orderflow audit`: by action or target, newest first.
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_target ON audit_log (target, id);

-- Admin actions are recorded by the role that performs them: the command
-- role (personal data erasure) and the projector role (dead letters
-- replayed or discarded); the query role reads the log. Only the columns a
-- caller says: id, at and db_user are the server's. An identity column
-- needs no grant on its sequence.
GRANT INSERT (actor, action, target, reason, detail) ON audit_log TO orderflow_command, orderflow_projector;
GRANT SELECT ON audit_log TO orderflow_query;

-- Readiness reads every set's version table with the process's own role.
GRANT SELECT ON goose_audit TO orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;

-- +goose Down
REVOKE SELECT ON goose_audit FROM orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;
DROP TABLE audit_log;
