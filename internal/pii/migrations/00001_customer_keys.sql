-- +goose Up
-- One data key per customer, wrapped by a master key (internal/pii/DESIGN.md).
-- An erasure deletes the row; a later order of the customer makes a new one,
-- with a new key_id.
CREATE TABLE customer_keys (
    key_id        uuid        PRIMARY KEY,
    customer_id   text        NOT NULL UNIQUE,
    master_key_id text        NOT NULL,
    wrapped       bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Re-wrapping pages through the keys of an old master key.
CREATE INDEX customer_keys_master_idx ON customer_keys (master_key_id, key_id);

-- The orders that hold a customer's personal data, for the erasure's
-- PersonalDataErased events; a row goes once its order has the event.
CREATE TABLE customer_orders (
    order_id    uuid PRIMARY KEY,
    customer_id text NOT NULL
);
CREATE INDEX customer_orders_customer_idx ON customer_orders (customer_id, order_id);

-- The command role makes keys, erases them and keeps the order list; the
-- query role opens values (query API, hub, export). The relay and the
-- projectors hold ciphertext only. Re-wrapping (UPDATE) is the owner's.
GRANT SELECT, INSERT, DELETE ON customer_keys, customer_orders TO orderflow_command;
GRANT SELECT ON customer_keys TO orderflow_query;

-- Readiness reads every set's version table with the process's own role.
GRANT SELECT ON goose_pii TO orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;

-- +goose Down
REVOKE SELECT ON goose_pii FROM orderflow_command, orderflow_relay, orderflow_projector, orderflow_query;
DROP TABLE customer_orders;
DROP TABLE customer_keys;
